/**
 * `npx tsx examples/bevtVideo.ts [--seeds N | --seed S[,S]] [--pretrain-steps N] [--finetune-steps N] [--labelled N]
 *   [--target pixel|hog] [--out DIR] [--backend wasm|cpu]`
 *
 * BEVT-style pretraining on the moving-shapes clips (`syntheticVideo`, class = direction x speed), then
 * fine-tuning, next to the same Video Swin fine-tuned from scratch for the same steps on the same few
 * labelled clips. Pretraining runs BEVT's two streams on every step (mixed batches, BEVT sec. 3): tube
 * masks on unlabelled clips (video stream) and BEiT block masks on single frames of other clips (image
 * stream, standing in for ImageNet), both predicting the HOG histograms (or the per-patch normalised
 * pixels) of the masked 16x16 cells, since no dVAE tokenizer is at hand. The fine-tuned backbone is a `videoSwin` of the
 * same config that loads the pretrained two-stream backbone's weights as an official BEVT checkpoint
 * (`loadTimmWeights`, the image-stream and neck keys skipped). Before fine-tuning, a linear probe on the
 * frozen mean-pooled features compares the pretrained and the random backbone. Writes `summary.json`
 * (accuracies per seed, mean and spread) and `bevt_video.png` (test accuracy against fine-tuning steps, and the pretraining loss).
 * Measured numbers: docs/guides/video.md.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { registerFastKernels } from '../src/backends/fastKernels.js';
import { syntheticVideo, SyntheticVideo } from '../src/data/syntheticVideo.js';
import { VideoClsHead, videoClsHead } from '../src/heads/videoHead.js';
import { manualSeed } from '../src/layers/init.js';
import { ForwardOptions, Module } from '../src/layers/module.js';
import { SwinTransformer3D, videoSwin } from '../src/models/videoSwin/index.js';
import type { VideoSwinConfig } from '../src/models/videoSwin/index.js';
import { beitBlockMask, BevtPretraining, bevtTubeMask } from '../src/pretrain/bevt.js';
import { SeededRandom } from '../src/pretrain/rng.js';
import { drawText } from '../src/viz/text.js';
import { encodePng } from '../src/viz/png.js';
import type { RgbImage } from '../src/viz/imageGrid.js';
import { loadTimmWeights } from '../src/weights/loadTimmWeights.js';

/** Options of {@link runBevtVideo}. */
export interface BevtVideoOptions {
  /** Seeds 0..seeds-1, or the list of seeds to run (default 3). */
  seeds?: number | number[];
  /** BEVT pretraining steps (default 1200). */
  pretrainSteps?: number;
  /** Fine-tuning steps, the same for the pretrained and the from-scratch model (default 300). */
  finetuneSteps?: number;
  /** Labelled training clips (default 64, 8 per class). */
  labelled?: number;
  /** Held-out test clips (default 128). */
  test?: number;
  /** Batch size of both phases (default 8). */
  batch?: number;
  /** Accuracy evaluated every this many fine-tuning steps (default 25). */
  evalEvery?: number;
  /** Peak fine-tuning learning rate (Adam, linear warmup over 10% of the steps, cosine decay; default 5e-4). */
  lr?: number;
  /** Regression target of the masked cells (default 'hog'). */
  target?: 'pixel' | 'hog';
  /** Output folder (default out/bevt-video). */
  out?: string;
  /** Frame side (default 64: a 4x4 grid of 16x16 cells). */
  frameSize?: number;
  /** Backbone config (default a 4-stage Video Swin of width 16). */
  backbone?: VideoSwinConfig;
}

/** What one seed gives. */
export interface BevtVideoSeed {
  seed: number;
  pretrainLoss: number[];
  /** `[step, accuracy]` along fine-tuning. */
  curvePretrained: [number, number][];
  curveScratch: [number, number][];
  accPretrained: number;
  accScratch: number;
  /** Linear-probe accuracy on the frozen pretrained / randomly initialised backbone. */
  probePretrained: number;
  probeScratch: number;
}

/** The result of {@link runBevtVideo}. */
export interface BevtVideoResult {
  seeds: BevtVideoSeed[];
  /** Linear probes on the frozen backbones before fine-tuning: mean and spread over the seeds. */
  probe: { meanPretrained: number; stdPretrained: number; meanScratch: number; stdScratch: number };
  meanPretrained: number;
  meanScratch: number;
  /** Sample standard deviations over the seeds. */
  stdPretrained: number;
  stdScratch: number;
  /** Seeds where the pretrained model ends strictly above the scratch one. */
  wins: number;
  settings: Settings;
  seconds: number;
  files: { summary: string; png: string };
}

type Settings = Required<Omit<BevtVideoOptions, 'out' | 'seeds'>> & { seeds: number[] };

const DEFAULT_BACKBONE: VideoSwinConfig = {
  patchSize: [2, 4, 4],
  embedDim: 16,
  depths: [1, 1, 2, 1],
  numHeads: [1, 2, 4, 8],
  windowSize: [2, 2, 2],
  patchNorm: true,
  dropPathRate: 0,
};
const FRAMES = 4;

/** Video Swin + I3D head as one module (an mmaction recognizer's `backbone.*` / `cls_head.*`). */
class Recognizer extends Module {
  readonly backbone: SwinTransformer3D;
  readonly head: VideoClsHead;
  constructor(cfg: VideoSwinConfig, numClasses: number) {
    super();
    this.backbone = this.addModule('backbone', videoSwin(cfg));
    this.head = this.addModule('cls_head', videoClsHead({ inChans: this.backbone.numFeatures, numClasses, dropRate: 0 }));
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.head.forward(this.backbone.forward(x, opts) as tf.Tensor5D, opts));
  }
}

function range(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/** Top-1 accuracy of `model` on the clips `indices`. */
function accuracy(model: Recognizer, data: SyntheticVideo, indices: number[], batch: number): number {
  let hits = 0;
  for (let s = 0; s < indices.length; s += batch) {
    const { clips, labels } = data.batch(indices.slice(s, s + batch));
    hits += tf.tidy(() => tf.sum(tf.equal(tf.argMax(model.forward(clips), -1), labels).toInt()).dataSync()[0]);
    tf.dispose([clips, labels]);
  }
  return hits / indices.length;
}

/** One BEVT pretraining batch: tube-masked clips and block-masked single frames of other clips. */
function pretrainBatch(data: SyntheticVideo, step: number, batch: number, grid: number, rng: SeededRandom) {
  const { clips, labels } = data.batch(range(1_000_000 + step * batch, batch));
  const other = data.batch(range(2_000_000 + step * batch, batch));
  const s = data.frameSize;
  const images = tf.tidy(() =>
    tf.concat(
      range(0, batch).map((b) => other.clips.slice([b, rng.randint(0, FRAMES - 1), 0, 0, 0], [1, 1, s, s, 3]).reshape([1, s, s, 3])),
      0,
    ),
  );
  const cells = grid * grid;
  const tubes = range(0, batch).map(() =>
    bevtTubeMask({ inputSize: grid, numMaskingPatches: cells / 2, minNumPatches: 2, clipLen: FRAMES, temporalScale: 2, seed: rng }),
  );
  const planes = range(0, batch).map(() => beitBlockMask({ inputSize: grid, numMaskingPatches: cells / 2, minNumPatches: 2, seed: rng }));
  const out = {
    video: clips,
    videoMask: tf.stack(tubes.map((t) => t.input)),
    videoLossMask: tf.stack(tubes.map((t) => t.output)),
    image: images,
    imageMask: tf.stack(planes),
  };
  tf.dispose([labels, other.clips, other.labels, ...tubes.flatMap((t) => [t.input, t.output]), ...planes]);
  return out;
}

/** Fine-tune `model` on the labelled clips for `steps` steps; accuracy on `test` every `evalEvery` steps. */
function finetune(
  model: Recognizer,
  data: SyntheticVideo,
  o: { labelled: number; steps: number; batch: number; evalEvery: number; test: number[]; seed: number; lr: number },
): [number, number][] {
  const opt = tf.train.adam(o.lr);
  const rng = new SeededRandom(o.seed + 77);
  const warmup = Math.max(1, Math.round(o.steps / 10));
  const curve: [number, number][] = [[0, accuracy(model, data, o.test, 64)]];
  const order = range(0, o.labelled);
  let pos = order.length;
  for (let step = 1; step <= o.steps; step++) {
    const idx: number[] = [];
    while (idx.length < o.batch) {
      if (pos >= order.length) {
        for (let i = order.length - 1; i > 0; i--) {
          const j = rng.randint(0, i);
          [order[i], order[j]] = [order[j], order[i]];
        }
        pos = 0;
      }
      idx.push(order[pos++]);
    }
    const { clips, labels } = data.batch(idx);
    // linear warmup, then cosine decay (the same schedule for both models)
    const lr = step <= warmup ? (o.lr * step) / warmup : 0.5 * o.lr * (1 + Math.cos((Math.PI * (step - warmup)) / (o.steps - warmup + 1)));
    (opt as unknown as { learningRate: number }).learningRate = lr;
    const loss = opt.minimize(
      () =>
        tf.tidy(
          () => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, data.numClasses), model.forward(clips, { training: true })) as tf.Scalar,
        ),
      true,
      model.trainableVariables(),
    );
    tf.dispose([clips, labels, loss as tf.Scalar]);
    if (step % o.evalEvery === 0 || step === o.steps) curve.push([step, accuracy(model, data, o.test, 64)]);
  }
  opt.dispose();
  return curve;
}

/** Mean-pooled features `[N, C]` of the (frozen) backbone for the clips `indices`. */
function pooledFeatures(backbone: SwinTransformer3D, data: SyntheticVideo, indices: number[], batch: number): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let s = 0; s < indices.length; s += batch) {
    const { clips, labels } = data.batch(indices.slice(s, s + batch));
    parts.push(tf.tidy(() => tf.mean(backbone.forward(clips) as tf.Tensor5D, [1, 2, 3]) as tf.Tensor2D));
    tf.dispose([clips, labels]);
  }
  const out = tf.concat(parts, 0) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/**
 * Linear probe on frozen features: a Linear on the standardised mean-pooled features of the labelled
 * clips (full batch, Adam, 300 steps), top-1 accuracy on the test clips.
 */
function linearProbe(backbone: SwinTransformer3D, data: SyntheticVideo, labelled: number[], test: number[]): number {
  const xtr = pooledFeatures(backbone, data, labelled, 64);
  const xte = pooledFeatures(backbone, data, test, 64);
  const ytr = tf.tensor1d(
    labelled.map((i) => data.label(i)),
    'int32',
  );
  const yte = tf.tensor1d(
    test.map((i) => data.label(i)),
    'int32',
  );
  const mean = tf.mean(xtr, 0);
  const std = tf.tidy(() => tf.add(tf.sqrt(tf.moments(xtr, 0).variance), 1e-6));
  const [a, b] = tf.tidy(() => [tf.div(tf.sub(xtr, mean), std), tf.div(tf.sub(xte, mean), std)]);
  const c = xtr.shape[1];
  const w = tf.tidy(() => tf.variable(tf.zeros([c, data.numClasses])));
  const bias = tf.tidy(() => tf.variable(tf.zeros([data.numClasses])));
  const opt = tf.train.adam(1e-2);
  const y = tf.oneHot(ytr, data.numClasses);
  for (let i = 0; i < 300; i++)
    tf.dispose(
      opt.minimize(() => tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(a, w), bias)) as tf.Scalar, true, [w, bias]) as tf.Scalar,
    );
  const acc = tf.tidy(() => tf.mean(tf.equal(tf.argMax(tf.add(tf.matMul(b, w), bias), -1), yte).toFloat()).dataSync()[0]);
  tf.dispose([xtr, xte, ytr, yte, mean, std, a, b, w, bias, y]);
  opt.dispose();
  return acc;
}

/** Run one seed: pretrain, fine-tune the pretrained and a fresh model, evaluate both. */
function runSeed(seed: number, o: Settings, log: (s: string) => void): BevtVideoSeed {
  const data = syntheticVideo({ frameSize: o.frameSize, numFrames: FRAMES, seed });
  const grid = o.frameSize / 16;
  manualSeed(seed);
  const pre = new BevtPretraining({ backbone: o.backbone, target: o.target });
  const opt = tf.train.adam(1e-3);
  const rng = new SeededRandom(seed + 1);
  const pretrainLoss: number[] = [];
  for (let step = 0; step < o.pretrainSteps; step++) {
    const b = pretrainBatch(data, step, o.batch, grid, rng);
    const loss = opt.minimize(() => pre.forward(b, { training: true }), true, pre.trainableVariables())!;
    pretrainLoss.push(loss.dataSync()[0]);
    tf.dispose([loss, ...Object.values(b)]);
    if ((step + 1) % 50 === 0) log(`seed ${seed} pretrain ${step + 1}/${o.pretrainSteps} loss ${pretrainLoss[step].toFixed(4)}`);
  }
  opt.dispose();
  const test = range(500_000, o.test);
  const ft = { labelled: o.labelled, steps: o.finetuneSteps, batch: o.batch, evalEvery: o.evalEvery, test, seed, lr: o.lr };
  // the same initialisation for both recognizers; the pretrained one then loads the BEVT backbone
  manualSeed(seed + 1000);
  const pretrained = new Recognizer(o.backbone, data.numClasses);
  manualSeed(seed + 1000);
  const scratch = new Recognizer(o.backbone, data.numClasses);
  const sd = pre.backbone.stateDict();
  const res = loadTimmWeights(pretrained.backbone, sd, { strict: false });
  tf.dispose(Object.values(sd));
  pre.dispose();
  const missing = pretrained.backbone.namedParameters().filter(([n]) => !res.loaded.includes(n));
  if (missing.length) throw new Error(`pretrained weights did not cover ${missing.map(([n]) => n).join(', ')}`);
  const probePretrained = linearProbe(pretrained.backbone, data, range(0, o.labelled), test);
  const probeScratch = linearProbe(scratch.backbone, data, range(0, o.labelled), test);
  log(`seed ${seed} linear probe: pretrained ${probePretrained.toFixed(3)}, random init ${probeScratch.toFixed(3)}`);
  const curvePretrained = finetune(pretrained, data, ft);
  log(`seed ${seed} pretrained: ${curvePretrained.map(([s, a]) => `${s}:${a.toFixed(3)}`).join(' ')}`);
  const curveScratch = finetune(scratch, data, ft);
  log(`seed ${seed} scratch:    ${curveScratch.map(([s, a]) => `${s}:${a.toFixed(3)}`).join(' ')}`);
  pretrained.dispose();
  scratch.dispose();
  return {
    seed,
    pretrainLoss,
    curvePretrained,
    curveScratch,
    probePretrained,
    probeScratch,
    accPretrained: curvePretrained[curvePretrained.length - 1][1],
    accScratch: curveScratch[curveScratch.length - 1][1],
  };
}

function meanStd(v: number[]): [number, number] {
  const m = v.reduce((a, x) => a + x, 0) / v.length;
  const s = v.length > 1 ? Math.sqrt(v.reduce((a, x) => a + (x - m) ** 2, 0) / (v.length - 1)) : 0;
  return [m, s];
}

/** A white canvas. */
function canvas(width: number, height: number): RgbImage {
  return { width, height, data: new Float32Array(width * height * 3).fill(1) };
}

function line(im: RgbImage, x0: number, y0: number, x1: number, y1: number, c: [number, number, number], thick = 1): void {
  const n = Math.ceil(Math.hypot(x1 - x0, y1 - y0)) * 2 + 1;
  for (let i = 0; i <= n; i++) {
    const x = x0 + ((x1 - x0) * i) / n;
    const y = y0 + ((y1 - y0) * i) / n;
    for (let dy = 0; dy < thick; dy++)
      for (let dx = 0; dx < thick; dx++) {
        const px = Math.round(x) + dx;
        const py = Math.round(y) + dy;
        if (px >= 0 && py >= 0 && px < im.width && py < im.height) im.data.set(c, (py * im.width + px) * 3);
      }
  }
}

/** A line plot of several series in a box at (x, y) of size w x h, axes scaled to [xMax], [yMin, yMax]. */
function plot(
  im: RgbImage,
  box: { x: number; y: number; w: number; h: number; xMax: number; yMin: number; yMax: number; title: string; yLabel: string },
  series: { points: [number, number][]; color: [number, number, number]; thick: number }[],
): void {
  const { x, y, w, h } = box;
  const grey: [number, number, number] = [0.6, 0.6, 0.6];
  line(im, x, y + h, x + w, y + h, grey);
  line(im, x, y, x, y + h, grey);
  drawText(im, box.title, x, y - 14);
  drawText(im, `${box.yMax.toFixed(2)}`, x - 30, y - 3, { color: [0.3, 0.3, 0.3] });
  drawText(im, `${box.yMin.toFixed(2)}`, x - 30, y + h - 3, { color: [0.3, 0.3, 0.3] });
  drawText(im, `${box.xMax}`, x + w - 12, y + h + 4, { color: [0.3, 0.3, 0.3] });
  drawText(im, box.yLabel, x + 4, y + h + 4, { color: [0.3, 0.3, 0.3] });
  const px = (v: number) => x + (v / box.xMax) * w;
  const py = (v: number) => y + h - ((Math.min(Math.max(v, box.yMin), box.yMax) - box.yMin) / (box.yMax - box.yMin)) * h;
  for (const s of series)
    for (let i = 1; i < s.points.length; i++)
      line(im, px(s.points[i - 1][0]), py(s.points[i - 1][1]), px(s.points[i][0]), py(s.points[i][1]), s.color, s.thick);
}

/** The figure: test accuracy along fine-tuning (thin: seeds, thick: mean) and the pretraining loss. */
function figure(r: Omit<BevtVideoResult, 'files' | 'seconds'>): Uint8Array {
  const im = canvas(760, 300);
  const blue: [number, number, number] = [0.1, 0.35, 0.85];
  const orange: [number, number, number] = [0.9, 0.45, 0.05];
  const light = (c: [number, number, number]): [number, number, number] => c.map((v) => 0.55 + 0.45 * v) as [number, number, number];
  const meanCurve = (k: 'curvePretrained' | 'curveScratch') =>
    r.seeds[0][k].map(([s], i) => [s, r.seeds.reduce((a, x) => a + x[k][i][1], 0) / r.seeds.length] as [number, number]);
  const steps = r.settings.finetuneSteps;
  plot(im, { x: 50, y: 40, w: 320, h: 200, xMax: steps, yMin: 0, yMax: 1, title: 'test accuracy vs fine-tuning step', yLabel: 'step' }, [
    ...r.seeds.map((s) => ({ points: s.curveScratch, color: light(orange), thick: 1 })),
    ...r.seeds.map((s) => ({ points: s.curvePretrained, color: light(blue), thick: 1 })),
    { points: meanCurve('curveScratch'), color: orange, thick: 2 },
    { points: meanCurve('curvePretrained'), color: blue, thick: 2 },
  ]);
  drawText(im, `BEVT-pretrained ${r.meanPretrained.toFixed(3)}`, 60, 262, { color: blue });
  drawText(im, `scratch ${r.meanScratch.toFixed(3)}`, 60, 276, { color: orange });
  drawText(im, `linear probe ${r.probe.meanPretrained.toFixed(3)}`, 230, 262, { color: blue });
  drawText(im, `linear probe ${r.probe.meanScratch.toFixed(3)}`, 230, 276, { color: orange });
  const losses = r.seeds.map((s) => s.pretrainLoss.map((v, i) => [i + 1, v] as [number, number]));
  const all = losses.flat().map((p) => p[1]);
  plot(
    im,
    {
      x: 440,
      y: 40,
      w: 300,
      h: 200,
      xMax: r.settings.pretrainSteps,
      yMin: Math.min(...all),
      yMax: Math.max(...all),
      title: `BEVT pretraining loss (${r.settings.target})`,
      yLabel: 'step',
    },
    losses.map((p) => ({ points: p, color: [0.2, 0.2, 0.2] as [number, number, number], thick: 1 })),
  );
  drawText(im, `${r.seeds.length} seeds, ${r.settings.labelled} labelled clips, ${r.settings.test} test clips`, 440, 262);
  const px = new Uint8Array(im.width * im.height * 3);
  for (let i = 0; i < px.length; i++) px[i] = Math.round(Math.min(1, Math.max(0, im.data[i])) * 255);
  return encodePng(px, im.width, im.height, { channels: 3, deflate: (d) => new Uint8Array(deflateSync(d)) });
}

/** Resolve the options (defaults applied). */
export function bevtVideoSettings(opts: BevtVideoOptions = {}): Settings {
  const seeds = opts.seeds ?? 3;
  return {
    seeds: typeof seeds === 'number' ? range(0, seeds) : seeds,
    pretrainSteps: opts.pretrainSteps ?? 1200,
    finetuneSteps: opts.finetuneSteps ?? 300,
    labelled: opts.labelled ?? 64,
    test: opts.test ?? 128,
    batch: opts.batch ?? 8,
    evalEvery: opts.evalEvery ?? 25,
    lr: opts.lr ?? 5e-4,
    target: opts.target ?? 'hog',
    frameSize: opts.frameSize ?? 64,
    backbone: opts.backbone ?? DEFAULT_BACKBONE,
  };
}

/** Mean, spread and wins over seeds run separately (e.g. in parallel processes); writes summary.json and the PNG. */
export function summarizeBevtVideo(seeds: BevtVideoSeed[], settings: Settings, out: string, seconds: number): BevtVideoResult {
  const [meanPretrained, stdPretrained] = meanStd(seeds.map((s) => s.accPretrained));
  const [meanScratch, stdScratch] = meanStd(seeds.map((s) => s.accScratch));
  const [probeMeanPretrained, probeStdPretrained] = meanStd(seeds.map((s) => s.probePretrained));
  const [probeMeanScratch, probeStdScratch] = meanStd(seeds.map((s) => s.probeScratch));
  const core = {
    seeds,
    probe: {
      meanPretrained: probeMeanPretrained,
      stdPretrained: probeStdPretrained,
      meanScratch: probeMeanScratch,
      stdScratch: probeStdScratch,
    },
    meanPretrained,
    meanScratch,
    stdPretrained,
    stdScratch,
    wins: seeds.filter((s) => s.accPretrained > s.accScratch).length,
    settings: { ...settings, seeds: seeds.map((s) => s.seed) },
  };
  mkdirSync(out, { recursive: true });
  const files = { summary: join(out, 'summary.json'), png: join(out, 'bevt_video.png') };
  writeFileSync(files.png, figure(core));
  const result: BevtVideoResult = { ...core, seconds, files };
  writeFileSync(files.summary, JSON.stringify(result, null, 2));
  return result;
}

/** Pretrain and fine-tune over the seeds; write summary.json and bevt_video.png into `out`. */
export function runBevtVideo(opts: BevtVideoOptions = {}, log: (s: string) => void = console.log): BevtVideoResult {
  const t0 = Date.now();
  const o = bevtVideoSettings(opts);
  const seeds = o.seeds.map((s) => runSeed(s, o, log));
  return summarizeBevtVideo(seeds, o, opts.out ?? join('out', 'bevt-video'), (Date.now() - t0) / 1000);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      'pretrain-steps': { type: 'string' },
      'finetune-steps': { type: 'string' },
      labelled: { type: 'string' },
      lr: { type: 'string' },
      target: { type: 'string' },
      out: { type: 'string' },
      backend: { type: 'string' },
    },
  });
  const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  (async () => {
    await tf.setBackend(values.backend ?? 'wasm');
    await tf.ready();
    if (tf.getBackend() === 'wasm') await registerFastKernels();
    const r = runBevtVideo({
      seeds: values.seed !== undefined ? values.seed.split(',').map(Number) : int(values.seeds),
      pretrainSteps: int(values['pretrain-steps']),
      finetuneSteps: int(values['finetune-steps']),
      labelled: int(values.labelled),
      lr: int(values.lr),
      target: values.target as 'pixel' | 'hog' | undefined,
      out: values.out,
    });
    console.log(
      JSON.stringify(
        {
          accPretrained: r.seeds.map((s) => s.accPretrained),
          accScratch: r.seeds.map((s) => s.accScratch),
          probe: r.probe,
          meanPretrained: r.meanPretrained,
          stdPretrained: r.stdPretrained,
          meanScratch: r.meanScratch,
          stdScratch: r.stdScratch,
          wins: r.wins,
          seconds: r.seconds,
          files: r.files,
        },
        null,
        2,
      ),
    );
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
