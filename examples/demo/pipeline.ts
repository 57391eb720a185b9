/**
 * The demo's pipeline, importable (the test runs it at the quick setting): SimMIM pretraining of a
 * small SwinV2 on generated shape images, a labelled PNG of input / masked input / prediction /
 * prediction pasted into the masked blocks, a linear probe of the frozen pretrained features next to
 * the same probe on the initial (random) features, fine-tuning a classifier from the pretrained
 * weights next to the same model trained from scratch for the same steps, and the fine-tuned model
 * saved as timm-named safetensors and as a TF.js model directory. It imports only the package
 * (`visbackbones`), so it can be copied into an application.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  encodePng,
  imageGrid,
  manualSeed,
  repeatMask,
  saveLayersModelToDir,
  SHAPES_MEAN,
  SHAPES_STD,
  simmim,
  swin,
  swinV2,
  syntheticShapes,
  tensorToImages,
  textImage,
  toLayersModel,
  Trainer,
  writeSafetensors,
} from 'visbackbones';
import type { DataSource, RgbImage, SimMIM, StepInfo, SwinTransformer, SwinV2Config, SyntheticShapes } from 'visbackbones';
import { linearProbe, probeFeatures } from './probe.js';
import { ProgressBar } from './progress.js';

/** A model of the demo: a Swin / SwinV2 config and the SimMIM mask geometry for it. */
export interface DemoModelPreset {
  family: 'swin' | 'swinv2';
  config: SwinV2Config;
  /** SimMIM mask block size in pixels (a multiple of the patch size). */
  maskPatchSize: number;
  maskRatio: number;
}

/** The models `--model` accepts. */
export const DEMO_MODELS: Record<string, DemoModelPreset> = {
  /** The default: a 2-stage SwinV2 on 32 px images (8x8 tokens of 4x4 pixels, windows of 4x4 tokens), ~80 K parameters. */
  swinv2_demo: {
    family: 'swinv2',
    config: { imgSize: 32, patchSize: 4, windowSize: 4, embedDim: 32, depths: [2, 2], numHeads: [2, 4], mlpRatio: 2 },
    maskPatchSize: 8,
    maskRatio: 0.6,
  },
  /** The same geometry with Swin (v1) blocks. */
  swin_demo: {
    family: 'swin',
    config: { imgSize: 32, patchSize: 4, windowSize: 4, embedDim: 32, depths: [2, 2], numHeads: [2, 4], mlpRatio: 2 },
    maskPatchSize: 8,
    maskRatio: 0.6,
  },
  /** A tiny SwinV2 for tests: one block per stage, width 16. */
  swinv2_test: {
    family: 'swinv2',
    config: { imgSize: 32, patchSize: 4, windowSize: 4, embedDim: 16, depths: [1, 1], numHeads: [1, 2], mlpRatio: 2 },
    maskPatchSize: 8,
    maskRatio: 0.6,
  },
};

/** The default steps of a full run and of `--quick` (the setting the demo test measures). */
export const FULL_STEPS = { pretrainSteps: 1000, finetuneSteps: 400 };
export const QUICK_STEPS = { pretrainSteps: 500, finetuneSteps: 250 };

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** A key of {@link DEMO_MODELS} (default 'swinv2_demo'). */
  model?: string;
  /** Fields that replace the preset's config (e.g. `{ embedDim: 48 }`). */
  config?: Partial<SwinV2Config>;
  /** SimMIM mask block size and ratio (default: the preset's). */
  maskPatchSize?: number;
  maskRatio?: number;
  /** Output folder (default 'out/demo'). */
  out?: string;
  /** SimMIM pretraining steps (default {@link FULL_STEPS}). */
  pretrainSteps?: number;
  /** Fine-tuning steps, also the from-scratch steps (default {@link FULL_STEPS}). */
  finetuneSteps?: number;
  /** Unlabelled images for pretraining (default 4096). */
  pretrainImages?: number;
  /** Labelled training images per class (default 100). */
  labelsPerClass?: number;
  /** Held-out test images (default 600). */
  testImages?: number;
  /** Batch size of both phases (default 32). */
  batchSize?: number;
  /** Peak learning rate of the SimMIM phase (AdamW, warm-up + cosine; default 2e-3). */
  pretrainLr?: number;
  /** Peak learning rate of fine-tuning and of the from-scratch run (default 3e-3). */
  finetuneLr?: number;
  /** Layer-wise learning-rate decay when fine-tuning (SimMIM: 0.9 for Swin; default off). */
  layerDecay?: number;
  /** Seed of the data, masks, data order and initialisation (default 0). */
  seed?: number;
  /** Number of classes (2..6, default 6). */
  numClasses?: number;
  /** Textured backgrounds and striped fills in the generated images (default true). */
  textures?: boolean;
  /** Skip writing the safetensors files and the TF.js directory (default false). */
  skipSave?: boolean;
  /** Print progress (default true). */
  verbose?: boolean;
  /** Where progress lines go (default stdout). */
  write?: (s: string) => void;
}

/** What {@link runDemo} measured and wrote. */
export interface DemoResult {
  model: string;
  seed: number;
  pretrain: { steps: number; firstLoss: number; lastLoss: number; seconds: number; stepsPerSec: number };
  /** Linear-probe accuracy of the frozen features: initial (random) weights and after pretraining. */
  probe: { random: number; pretrained: number; seconds: number };
  finetune: { steps: number; accuracy: number; lastLoss: number; seconds: number };
  scratch: { steps: number; accuracy: number; lastLoss: number; seconds: number };
  testImages: number;
  labelledImages: number;
  classNames: string[];
  files: { reconstructionPng: string; pretrainedSafetensors?: string; classifierSafetensors?: string; tfjsDir?: string; summary: string };
  seconds: number;
}

/** What the demo writes next to `model.json` (the CLI's `convert` fields and the class names). */
export interface DemoModelInfo {
  model: string;
  family: string;
  config: Record<string, unknown>;
  inputShape: [number, number, number];
  mean: number[];
  std: number[];
  numClasses: number;
  classNames: string[];
  featureInfo: { numChs: number; reduction: number; module: string }[];
  source: string;
}

interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
}

/** Images (and one-hot labels) of a dataset slice, rendered once and kept as tensors. */
class ImagePool implements DataSource<Batch> {
  readonly x: tf.Tensor4D;
  readonly labels: tf.Tensor1D;
  private calls = 0;
  constructor(
    ds: SyntheticShapes,
    readonly size: number,
    readonly numClasses: number,
    private readonly augment = false,
  ) {
    const b = ds.batch(Array.from({ length: size }, (_, i) => i));
    this.x = b.images;
    this.labels = b.labels;
  }
  /**
   * A batch; with `augment`, each image is given one of the 8 symmetries of the square (the
   * rotations by multiples of 90 degrees, each optionally mirrored), drawn from a hash of the image
   * index and the batch count, so a run is reproducible. A shape's class does not change under them.
   */
  batch(indices: number[]): Batch {
    const call = this.calls++;
    return tf.tidy(() => {
      const idx = tf.tensor1d(indices, 'int32');
      let x = tf.gather(this.x, idx) as tf.Tensor4D;
      if (this.augment) {
        const t = tf.transpose(x, [0, 2, 1, 3]);
        const variants = [
          x,
          tf.reverse(x, 2),
          tf.reverse(x, 1),
          tf.reverse(x, [1, 2]),
          t,
          tf.reverse(t, 2),
          tf.reverse(t, 1),
          tf.reverse(t, [1, 2]),
        ];
        const all = tf.stack(variants, 1).reshape([-1, ...x.shape.slice(1)]);
        const pick = indices.map((i, k) => k * 8 + (((Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(call + 1, 0x85ebca77)) >>> 13) & 7));
        x = tf.gather(all, tf.tensor1d(pick, 'int32')) as tf.Tensor4D;
      }
      return { x, y: tf.oneHot(tf.gather(this.labels, idx), this.numClasses).toFloat() as tf.Tensor2D };
    });
  }
  dispose(): void {
    tf.dispose([this.x, this.labels]);
  }
}

function buildBackbone(p: DemoModelPreset, numClasses: number): SwinTransformer {
  const cfg = { ...p.config, numClasses };
  return p.family === 'swin' ? swin(cfg) : swinV2(cfg);
}

/** Top-1 accuracy of `model` on a pool, in batches. */
function accuracy(model: SwinTransformer, pool: ImagePool, batch = 100): number {
  let correct = 0;
  for (let s = 0; s < pool.size; s += batch) {
    const n = Math.min(batch, pool.size - s);
    correct += tf.tidy(() => {
      const x = pool.x.slice([s, 0, 0, 0], [n, -1, -1, -1]);
      const pred = tf.argMax(model.forwardLogits(x), 1);
      return tf.sum(tf.equal(pred, pool.labels.slice([s], [n])).toInt()).dataSync()[0];
    });
  }
  return correct / pool.size;
}

/** Nearest-neighbour upscaling of an image by an integer factor. */
function upscale(im: RgbImage, s: number): RgbImage {
  const w = im.width * s;
  const h = im.height * s;
  const data = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = (Math.floor(y / s) * im.width + Math.floor(x / s)) * 3;
      data.set(im.data.subarray(src, src + 3), (y * w + x) * 3);
    }
  }
  return { width: w, height: h, data };
}

/** Row labels of the reconstruction figure, top to bottom. */
export const FIGURE_ROWS = ['input', 'masked', 'prediction', 'prediction\npasted into\nthe masked\nblocks'];
/** Pixel scale of the figure's label font (5x7 glyphs) and width of the label column. */
export const FIGURE_FONT_SCALE = 2;
export const FIGURE_LABEL_WIDTH = 136;

/**
 * A PNG grid: a label column, then rows input / masked input / prediction / prediction pasted into
 * the masked blocks (the visible pixels are the input's).
 */
function reconstructionFigure(model: SimMIM, x: tf.Tensor4D, mask: tf.Tensor3D, patch: number): Uint8Array {
  const tensors = tf.tidy(() => {
    const rec = model.forward(x, { mask });
    const [b, h, w] = x.shape;
    const m = repeatMask(mask, patch).reshape([b, h, w, 1]);
    const visible = tf.mul(x, tf.sub(1, m)); // masked pixels at the normalised mean: mid grey
    return [x.clone(), visible, rec, tf.add(visible, tf.mul(rec, m))];
  });
  const scale = Math.max(1, Math.round(96 / x.shape[1]));
  const rows = tensors.map((t, r) => {
    const cells = tensorToImages(t, SHAPES_MEAN, SHAPES_STD).map((im) => upscale(im, scale));
    const label = textImage(FIGURE_ROWS[r], { scale: FIGURE_FONT_SCALE, width: FIGURE_LABEL_WIDTH, height: cells[0].height, pad: 4 });
    return [label, ...cells];
  });
  tf.dispose(tensors);
  const g = imageGrid(rows, { pad: 2 });
  return encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (d) => new Uint8Array(deflateSync(d)) });
}

/** Run the whole demo once (one seed). Disposes every tensor it makes. */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const t0 = performance.now();
  const modelName = opts.model ?? 'swinv2_demo';
  const base = DEMO_MODELS[modelName];
  if (!base) throw new Error(`unknown demo model '${modelName}' (expected one of ${Object.keys(DEMO_MODELS).join(', ')})`);
  const preset: DemoModelPreset = {
    ...base,
    config: { ...base.config, ...(opts.config ?? {}) },
    maskPatchSize: opts.maskPatchSize ?? base.maskPatchSize,
    maskRatio: opts.maskRatio ?? base.maskRatio,
  };
  const out = opts.out ?? join('out', 'demo');
  const seed = opts.seed ?? 0;
  const numClasses = opts.numClasses ?? 6;
  const pretrainSteps = opts.pretrainSteps ?? FULL_STEPS.pretrainSteps;
  const finetuneSteps = opts.finetuneSteps ?? FULL_STEPS.finetuneSteps;
  const batchSize = opts.batchSize ?? 32;
  const verbose = opts.verbose ?? true;
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  const say = (s: string) => verbose && write(`${s}\n`);
  const size = preset.config.imgSize as number;
  mkdirSync(out, { recursive: true });

  // data: unlabelled images for pretraining, a few labelled ones, held-out test images (three seeds)
  const tData = performance.now();
  const shapes = (s: number) => syntheticShapes({ imageSize: size, seed: s, numClasses, textures: opts.textures });
  const classNames = shapes(0).classNames;
  const unlabelled = new ImagePool(shapes(seed * 3 + 1), opts.pretrainImages ?? 4096, numClasses, true);
  const labelled = new ImagePool(shapes(seed * 3 + 2), (opts.labelsPerClass ?? 100) * numClasses, numClasses, true);
  const test = new ImagePool(shapes(seed * 3 + 3), opts.testImages ?? 600, numClasses);
  say(
    `data: ${unlabelled.size} unlabelled, ${labelled.size} labelled (${labelled.size / numClasses} per class), ${test.size} test images of ${size}x${size}, classes ${classNames.join(', ')} (${((performance.now() - tData) / 1000).toFixed(1)} s)`,
  );

  // 1. SimMIM pretraining
  manualSeed(seed);
  const backbone = buildBackbone(preset, 0);
  // the from-scratch model and the random-feature probe use these very weights: the only difference is the pretraining
  const initialSd = backbone.stateDict();
  const tProbe0 = performance.now();
  const probeInputs = (): [tf.Tensor2D, tf.Tensor2D] => [probeFeatures(backbone, labelled.x), probeFeatures(backbone, test.x)];
  const randomFeats = probeInputs();
  let probeSeconds = (performance.now() - tProbe0) / 1000;
  const sim = simmim(backbone, { maskPatchSize: preset.maskPatchSize, maskRatio: preset.maskRatio });
  say(
    `model: ${modelName} (${preset.family}, ${backbone.numParams()} backbone parameters), SimMIM mask ${preset.maskPatchSize}px blocks at ratio ${preset.maskRatio}`,
  );
  const bar1 = new ProgressBar('pretrain', pretrainSteps, { write });
  const pre = new Trainer<Batch>({
    model: sim,
    lr: opts.pretrainLr ?? 2e-3,
    warmupSteps: Math.round(pretrainSteps * 0.05),
    minLr: 1e-5,
    clipGradNorm: 5,
    seed,
    loss: (b, ctx) => {
      const mask = sim.generateMask(b.x.shape[0], size, ctx.rng);
      return sim.loss(b.x, { mask, training: true });
    },
    onStep: (i) => verbose && bar1.update(i.step + 1, i.loss),
  });
  const preInfos = pre.fit(unlabelled, {
    epochs: Math.ceil((pretrainSteps * batchSize) / unlabelled.size) + 1,
    batchSize,
    maxSteps: pretrainSteps,
  });
  const preSeconds = bar1.elapsed;
  pre.dispose();

  // 2. the reconstruction figure
  const figX = test.x.slice([0, 0, 0, 0], [Math.min(8, test.size), -1, -1, -1]);
  const figMask = sim.generateMask(figX.shape[0], size, 1234);
  const png = reconstructionFigure(sim, figX, figMask, backbone.patchEmbed.opts.patchSize);
  const files: DemoResult['files'] = { reconstructionPng: join(out, 'simmim_reconstruction.png'), summary: join(out, 'summary.json') };
  writeFileSync(files.reconstructionPng, png);
  tf.dispose([figX, figMask]);
  if (!opts.skipSave) {
    files.pretrainedSafetensors = join(out, 'simmim_pretrained.safetensors');
    const simSd = sim.stateDict();
    writeFileSync(files.pretrainedSafetensors, writeSafetensors(simSd, { format: 'pt', model: modelName, stage: 'simmim' }));
    tf.dispose(Object.values(simSd));
  }
  say(
    `wrote ${files.reconstructionPng} (rows: input, masked, prediction, prediction pasted into the masked blocks)${files.pretrainedSafetensors ? ` and ${files.pretrainedSafetensors}` : ''}`,
  );

  // 3. linear probe of the frozen features: initial weights vs pretrained weights, same probe
  const tProbe1 = performance.now();
  const pretrainedFeats = probeInputs();
  const probeOf = ([tr, te]: [tf.Tensor2D, tf.Tensor2D]) =>
    linearProbe({ x: tr, labels: labelled.labels }, { x: te, labels: test.labels }, numClasses);
  const probe = { random: probeOf(randomFeats), pretrained: probeOf(pretrainedFeats), seconds: 0 };
  tf.dispose([...randomFeats, ...pretrainedFeats]);
  probeSeconds += (performance.now() - tProbe1) / 1000;
  probe.seconds = probeSeconds;
  say(
    `linear probe of the frozen features (${labelled.size} labelled images): random ${(100 * probe.random).toFixed(1)}%, SimMIM-pretrained ${(100 * probe.pretrained).toFixed(1)}%`,
  );

  // 4. fine-tune from the pretrained encoder, and the same model from scratch, same steps and settings
  const pretrainedSd = backbone.stateDict();
  sim.dispose();
  const train = (label: string, init: Record<string, tf.Tensor>, s: number) => {
    manualSeed(s); // the same classifier initialisation for both runs
    const model = buildBackbone(preset, numClasses);
    const r = model.loadStateDict(init, { strict: false });
    const notLoaded = r.missing.filter((k) => !k.startsWith('head.'));
    if (notLoaded.length || r.unexpected.length)
      throw new Error(`backbone weights do not fit: missing ${notLoaded.join(', ')} unexpected ${r.unexpected.join(', ')}`);
    const bar = new ProgressBar(label, finetuneSteps, { write });
    const trainer = new Trainer<Batch>({
      model,
      lr: opts.finetuneLr ?? 3e-3,
      warmupSteps: Math.round(finetuneSteps * 0.1),
      minLr: 1e-5,
      clipGradNorm: 5,
      seed: seed + 17,
      layerDecay: opts.layerDecay !== undefined && opts.layerDecay < 1 ? opts.layerDecay : undefined,
      loss: (b) => tf.losses.softmaxCrossEntropy(b.y, model.forwardLogits(b.x, { training: true })) as tf.Scalar,
      onStep: (i: StepInfo) => verbose && bar.update(i.step + 1, i.loss),
    });
    const infos = trainer.fit(labelled, {
      epochs: Math.ceil((finetuneSteps * batchSize) / labelled.size) + 1,
      batchSize: Math.min(batchSize, labelled.size),
      maxSteps: finetuneSteps,
    });
    trainer.dispose();
    const seconds = bar.elapsed;
    const acc = accuracy(model, test);
    return { model, acc, lastLoss: infos[infos.length - 1].loss, seconds };
  };
  const ft = train('finetune', pretrainedSd, seed + 100);
  tf.dispose(Object.values(pretrainedSd));
  const sc = train('scratch', initialSd, seed + 100);
  tf.dispose(Object.values(initialSd));
  sc.model.dispose();
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`.padStart(6);
  say('');
  say(
    `held-out accuracy on ${test.size} generated images (${numClasses} classes, chance ${(100 / numClasses).toFixed(1)}%), ${labelled.size} labelled images:`,
  );
  say(`  linear probe, frozen features   random init ${pct(probe.random)}   SimMIM-pretrained ${pct(probe.pretrained)}`);
  say(`  fine-tuned ${String(finetuneSteps).padStart(4)} steps           from scratch ${pct(sc.acc)}   from SimMIM        ${pct(ft.acc)}`);

  // 5. save the fine-tuned classifier: timm-named safetensors and a TF.js model directory
  if (!opts.skipSave) {
    files.classifierSafetensors = join(out, 'classifier.safetensors');
    files.tfjsDir = join(out, 'tfjs_model');
    const sd = ft.model.stateDict();
    writeFileSync(
      files.classifierSafetensors,
      writeSafetensors(sd, { format: 'pt', model: modelName, classes: JSON.stringify(classNames) }),
    );
    tf.dispose(Object.values(sd));
    const inputShape: [number, number, number] = [size, size, 3];
    await saveLayersModelToDir(toLayersModel(ft.model, inputShape, 'backbone'), files.tfjsDir);
    const info: DemoModelInfo = {
      model: modelName,
      family: preset.family,
      config: { ...preset.config, numClasses },
      inputShape,
      mean: SHAPES_MEAN,
      std: SHAPES_STD,
      numClasses,
      classNames,
      featureInfo: ft.model.featureInfo.map((f) => ({ ...f })),
      source: files.classifierSafetensors,
    };
    writeFileSync(join(files.tfjsDir, 'visbackbones.json'), JSON.stringify(info, null, 2));
    say(`wrote ${files.classifierSafetensors} (timm keys) and ${files.tfjsDir}/ (model.json, weights.bin, visbackbones.json)`);
  }
  ft.model.dispose();

  unlabelled.dispose();
  labelled.dispose();
  test.dispose();
  const result: DemoResult = {
    model: modelName,
    seed,
    pretrain: {
      steps: preInfos.length,
      firstLoss: preInfos[0].loss,
      lastLoss: preInfos[preInfos.length - 1].loss,
      seconds: preSeconds,
      stepsPerSec: preInfos.length / preSeconds,
    },
    probe,
    finetune: { steps: finetuneSteps, accuracy: ft.acc, lastLoss: ft.lastLoss, seconds: ft.seconds },
    scratch: { steps: finetuneSteps, accuracy: sc.acc, lastLoss: sc.lastLoss, seconds: sc.seconds },
    testImages: test.size,
    labelledImages: labelled.size,
    classNames,
    files,
    seconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(files.summary, JSON.stringify(result, null, 2));
  say(`seed ${seed}: ${result.seconds.toFixed(0)} s; summary in ${files.summary}`);
  return result;
}

/** Mean and sample standard deviation. */
export function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

/** Per-seed accuracies and their mean / standard deviation over seeds (percent). */
export function summarizeSeeds(results: DemoResult[]): string {
  const rows: [string, (r: DemoResult) => number][] = [
    ['probe, random features', (r) => r.probe.random],
    ['probe, SimMIM features', (r) => r.probe.pretrained],
    ['probe gain', (r) => r.probe.pretrained - r.probe.random],
    ['fine-tune, from scratch', (r) => r.scratch.accuracy],
    ['fine-tune, from SimMIM', (r) => r.finetune.accuracy],
    ['fine-tune gain', (r) => r.finetune.accuracy - r.scratch.accuracy],
  ];
  const lines = [`over seeds ${results.map((r) => r.seed).join(', ')} (held-out accuracy, %):`];
  for (const [name, f] of rows) {
    const v = results.map(f);
    const { mean, std } = meanStd(v);
    lines.push(
      `  ${name.padEnd(24)} ${v.map((x) => (100 * x).toFixed(1).padStart(5)).join(' ')}   mean ${(100 * mean).toFixed(1).padStart(5)} +- ${(100 * std).toFixed(1)}`,
    );
  }
  return lines.join('\n');
}
