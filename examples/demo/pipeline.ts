/**
 * The demo's pipeline, importable (the test runs it at a tiny size): SimMIM pretraining of a small
 * SwinV2 on generated shape images, a PNG of input / mask / reconstruction, fine-tuning a classifier
 * from the pretrained weights next to the same model trained from scratch for the same steps, and
 * the fine-tuned model saved as timm-named safetensors and as a TF.js model directory.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { toLayersModel } from '../../src/adapter/layersAdapter.js';
import type { ConvertedModelInfo } from '../../src/cli/convert.js';
import { SHAPES_MEAN, SHAPES_STD, syntheticShapes, SyntheticShapes } from '../../src/data/syntheticShapes.js';
import { manualSeed } from '../../src/layers/init.js';
import { swin, swinV2, SwinTransformer, SwinV2Config } from '../../src/models/swin/swinTransformer.js';
import { repeatMask } from '../../src/pretrain/maskUtils.js';
import { simmim, SimMIM } from '../../src/pretrain/simmim.js';
import { DataSource, StepInfo, Trainer } from '../../src/train/trainer.js';
import { imageGrid, tensorToImages } from '../../src/viz/imageGrid.js';
import { encodePng } from '../../src/viz/png.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { saveLayersModelToDir } from '../../src/weights/tfjsFormat.js';
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
  /** SimMIM pretraining steps (default 1200). */
  pretrainSteps?: number;
  /** Fine-tuning steps, also the from-scratch steps (default 300). */
  finetuneSteps?: number;
  /** Unlabelled images for pretraining (default 4096). */
  pretrainImages?: number;
  /** Labelled training images per class (default 100). */
  labelsPerClass?: number;
  /** Held-out test images (default 600). */
  testImages?: number;
  /** Batch size of both phases (default 32). */
  batchSize?: number;
  /** Peak learning rate of the SimMIM phase (AdamW, warm-up + cosine; default 5e-4). */
  pretrainLr?: number;
  /** Peak learning rate of fine-tuning and of the from-scratch run (default 5e-4). */
  finetuneLr?: number;
  /** Layer-wise learning-rate decay when fine-tuning (SimMIM: 0.9 for Swin). */
  layerDecay?: number;
  /** Seed of the data, masks, data order and initialisation (default 0). */
  seed?: number;
  /** Number of classes (2..6, default 6). */
  numClasses?: number;
  /** Print progress (default true). */
  verbose?: boolean;
  /** Where progress lines go (default stdout). */
  write?: (s: string) => void;
}

/** What {@link runDemo} measured and wrote. */
export interface DemoResult {
  model: string;
  pretrain: { steps: number; firstLoss: number; lastLoss: number; seconds: number; stepsPerSec: number };
  finetune: { steps: number; accuracy: number; lastLoss: number; seconds: number };
  scratch: { steps: number; accuracy: number; lastLoss: number; seconds: number };
  testImages: number;
  files: { reconstructionPng: string; pretrainedSafetensors: string; classifierSafetensors: string; tfjsDir: string; summary: string };
  seconds: number;
}

interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
}

/** Images (and one-hot labels) of a dataset slice, rendered once and kept as tensors. */
class ImagePool implements DataSource<Batch> {
  readonly x: tf.Tensor4D;
  readonly labels: tf.Tensor1D;
  constructor(ds: SyntheticShapes, readonly size: number, readonly numClasses: number, private readonly flip = false) {
    const b = ds.batch(Array.from({ length: size }, (_, i) => i));
    this.x = b.images;
    this.labels = b.labels;
  }
  /** A batch; with `flip`, a seeded half of the images are mirrored left-right. */
  batch(indices: number[]): Batch {
    return tf.tidy(() => {
      const idx = tf.tensor1d(indices, 'int32');
      let x = tf.gather(this.x, idx) as tf.Tensor4D;
      if (this.flip) {
        const m = tf.tensor1d(indices.map((i, k) => ((i * 2654435761 + k * 40503 + indices[0]) >>> 7) & 1), 'bool');
        x = tf.where(m.reshape([-1, 1, 1, 1]).tile([1, ...x.shape.slice(1)]), tf.reverse(x, 2), x) as tf.Tensor4D;
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

/** A PNG grid of rows input / masked input / reconstruction / reconstruction with the visible patches pasted. */
function reconstructionFigure(model: SimMIM, x: tf.Tensor4D, mask: tf.Tensor3D, patch: number): Uint8Array {
  const tensors = tf.tidy(() => {
    const rec = model.forward(x, { mask });
    const [b, h, w] = x.shape;
    const m = repeatMask(mask, patch).reshape([b, h, w, 1]);
    const visible = tf.mul(x, tf.sub(1, m)); // masked pixels at the normalised mean: mid grey
    return [x.clone(), visible, rec, tf.add(visible, tf.mul(rec, m))];
  });
  const rows = tensors.map((t) => tensorToImages(t, SHAPES_MEAN, SHAPES_STD));
  tf.dispose(tensors);
  const g = imageGrid(rows, { pad: 2, scale: Math.max(1, Math.round(96 / x.shape[1])) });
  return encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (d) => new Uint8Array(deflateSync(d)) });
}

/** Run the whole demo. Disposes every tensor it makes. */
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
  const pretrainSteps = opts.pretrainSteps ?? 1200;
  const finetuneSteps = opts.finetuneSteps ?? 300;
  const batchSize = opts.batchSize ?? 32;
  const verbose = opts.verbose ?? true;
  const write = opts.write ?? ((s: string) => process.stdout.write(s));
  const say = (s: string) => verbose && write(`${s}\n`);
  const size = preset.config.imgSize as number;
  mkdirSync(out, { recursive: true });

  // data: unlabelled images for pretraining, a few labelled ones, held-out test images (three seeds)
  const tData = performance.now();
  const unlabelled = new ImagePool(syntheticShapes({ imageSize: size, seed: seed * 3 + 1, numClasses }), opts.pretrainImages ?? 4096, numClasses, true);
  const labelled = new ImagePool(syntheticShapes({ imageSize: size, seed: seed * 3 + 2, numClasses }), (opts.labelsPerClass ?? 100) * numClasses, numClasses, true);
  const test = new ImagePool(syntheticShapes({ imageSize: size, seed: seed * 3 + 3, numClasses }), opts.testImages ?? 600, numClasses);
  say(`data: ${unlabelled.size} unlabelled, ${labelled.size} labelled (${labelled.size / numClasses} per class), ${test.size} test images of ${size}x${size}, ${numClasses} classes (${((performance.now() - tData) / 1000).toFixed(1)} s)`);

  // 1. SimMIM pretraining
  manualSeed(seed);
  const backbone = buildBackbone(preset, 0);
  // the from-scratch model starts from these very weights: the only difference is the pretraining
  const initialSd = backbone.stateDict();
  const sim = simmim(backbone, { maskPatchSize: preset.maskPatchSize, maskRatio: preset.maskRatio });
  say(`model: ${modelName} (${preset.family}, ${backbone.numParams()} backbone parameters), SimMIM mask ${preset.maskPatchSize}px blocks at ratio ${preset.maskRatio}`);
  const bar1 = new ProgressBar('pretrain', pretrainSteps, { write });
  const pre = new Trainer<Batch>({
    model: sim,
    lr: opts.pretrainLr ?? 5e-4,
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
  const preInfos = pre.fit(unlabelled, { epochs: Math.ceil((pretrainSteps * batchSize) / unlabelled.size) + 1, batchSize, maxSteps: pretrainSteps });
  const preSeconds = bar1.elapsed;
  pre.dispose();

  // 2. the reconstruction figure
  const figX = test.x.slice([0, 0, 0, 0], [Math.min(8, test.size), -1, -1, -1]);
  const figMask = sim.generateMask(figX.shape[0], size, 1234);
  const png = reconstructionFigure(sim, figX, figMask, backbone.patchEmbed.opts.patchSize);
  const files = {
    reconstructionPng: join(out, 'simmim_reconstruction.png'),
    pretrainedSafetensors: join(out, 'simmim_pretrained.safetensors'),
    classifierSafetensors: join(out, 'classifier.safetensors'),
    tfjsDir: join(out, 'tfjs_model'),
    summary: join(out, 'summary.json'),
  };
  writeFileSync(files.reconstructionPng, png);
  tf.dispose([figX, figMask]);
  const simSd = sim.stateDict();
  writeFileSync(files.pretrainedSafetensors, writeSafetensors(simSd, { format: 'pt', model: modelName, stage: 'simmim' }));
  tf.dispose(Object.values(simSd));
  say(`wrote ${files.reconstructionPng} (rows: input, masked, reconstruction, reconstruction pasted into the visible patches) and ${files.pretrainedSafetensors}`);

  // 3. fine-tune from the pretrained encoder, and the same model from scratch, same steps and settings
  const pretrainedSd = backbone.stateDict();
  sim.dispose();
  const train = (label: string, init: Record<string, tf.Tensor>, s: number) => {
    manualSeed(s); // the same classifier initialisation for both runs
    const model = buildBackbone(preset, numClasses);
    const r = model.loadStateDict(init, { strict: false });
    const notLoaded = r.missing.filter((k) => !k.startsWith('head.'));
    if (notLoaded.length || r.unexpected.length) throw new Error(`backbone weights do not fit: missing ${notLoaded.join(', ')} unexpected ${r.unexpected.join(', ')}`);
    const bar = new ProgressBar(label, finetuneSteps, { write });
    const trainer = new Trainer<Batch>({
      model,
      lr: opts.finetuneLr ?? 5e-4,
      warmupSteps: Math.round(finetuneSteps * 0.1),
      minLr: 1e-5,
      clipGradNorm: 5,
      seed: seed + 17,
      layerDecay: opts.layerDecay !== undefined && opts.layerDecay < 1 ? opts.layerDecay : undefined,
      loss: (b) => tf.losses.softmaxCrossEntropy(b.y, model.forwardLogits(b.x, { training: true })) as tf.Scalar,
      onStep: (i: StepInfo) => verbose && bar.update(i.step + 1, i.loss),
    });
    const infos = trainer.fit(labelled, { epochs: Math.ceil((finetuneSteps * batchSize) / labelled.size) + 1, batchSize: Math.min(batchSize, labelled.size), maxSteps: finetuneSteps });
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
  say('');
  say(`held-out accuracy on ${test.size} generated images (${numClasses} classes, chance ${(100 / numClasses).toFixed(1)}%):`);
  say(`  fine-tuned from SimMIM pretraining: ${(100 * ft.acc).toFixed(1)}%`);
  say(`  same model from scratch:            ${(100 * sc.acc).toFixed(1)}%  (${finetuneSteps} steps each, ${labelled.size} labelled images)`);

  // 4. save the fine-tuned classifier: timm-named safetensors and a TF.js model directory
  const sd = ft.model.stateDict();
  writeFileSync(files.classifierSafetensors, writeSafetensors(sd, { format: 'pt', model: modelName, classes: JSON.stringify(test.numClasses) }));
  tf.dispose(Object.values(sd));
  const inputShape: [number, number, number] = [size, size, 3];
  await saveLayersModelToDir(toLayersModel(ft.model, inputShape, 'backbone'), files.tfjsDir);
  const info: ConvertedModelInfo = {
    model: modelName,
    family: preset.family,
    config: { ...preset.config, numClasses },
    inputShape,
    mean: SHAPES_MEAN,
    std: SHAPES_STD,
    numClasses,
    featureInfo: ft.model.featureInfo.map((f) => ({ ...f })),
    source: files.classifierSafetensors,
  };
  writeFileSync(join(files.tfjsDir, 'visbackbones.json'), JSON.stringify(info, null, 2));
  ft.model.dispose();
  say(`wrote ${files.classifierSafetensors} (timm keys) and ${files.tfjsDir}/ (model.json, weights.bin, visbackbones.json)`);

  unlabelled.dispose();
  labelled.dispose();
  test.dispose();
  const result: DemoResult = {
    model: modelName,
    pretrain: {
      steps: preInfos.length,
      firstLoss: preInfos[0].loss,
      lastLoss: preInfos[preInfos.length - 1].loss,
      seconds: preSeconds,
      stepsPerSec: preInfos.length / preSeconds,
    },
    finetune: { steps: finetuneSteps, accuracy: ft.acc, lastLoss: ft.lastLoss, seconds: ft.seconds },
    scratch: { steps: finetuneSteps, accuracy: sc.acc, lastLoss: sc.lastLoss, seconds: sc.seconds },
    testImages: test.size,
    files,
    seconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(files.summary, JSON.stringify(result, null, 2));
  say(`total ${result.seconds.toFixed(0)} s; summary in ${files.summary}`);
  return result;
}
