/**
 * # Notebook: SimMIM masks and reconstructions
 *
 * SimMIM (Xie et al. 2022) masks random square blocks of the image (sec. 3.1: blocks of 32 px at a
 * ratio of 0.6 for Swin at 192 px), replaces the masked patch embeddings by a learned mask token, and
 * regresses the raw pixels of the masked blocks with a one-layer head and an L1 loss (sec. 3.2-3.3).
 *
 * This notebook
 * 1. draws `simmim_masks.png`: masks of four settings (rows: block size x ratio) for four seeds, on
 *    the model's patch grid (white = masked), and checks each holds exactly `ceil(cells * ratio)` blocks;
 * 2. pretrains a tiny SwinV2 with SimMIM on generated shape images for a few dozen steps and draws
 *    `simmim_reconstructions.png`: input, masked input, reconstruction before training and after
 *    training (the masked blocks filled with the prediction), for held-out images; it reports the
 *    held-out loss before and after.
 *
 * Run: `npx tsx docs/notebooks/simmimMasks.ts [OUT_DIR]`.
 */
import * as tf from '@tensorflow/tfjs';
import { SHAPES_MEAN, SHAPES_STD, syntheticShapes } from '../../src/data/syntheticShapes.js';
import { manualSeed } from '../../src/layers/init.js';
import { swinV2 } from '../../src/models/swin/swinTransformer.js';
import { repeatMask } from '../../src/pretrain/maskUtils.js';
import { simmim, SimMIM } from '../../src/pretrain/simmim.js';
import { simmimMask } from '../../src/pretrain/simmimMask.js';
import { Trainer } from '../../src/train/trainer.js';
import { RgbImage, tensorToImages } from '../../src/viz/imageGrid.js';
import { NotebookOptions, runIfMain, savePng } from './lib.js';

/** Options of this notebook (`steps` of pretraining, default 60, in batches of `batchSize`, default 32). */
export interface SimMIMNotebookOptions extends NotebookOptions {
  steps?: number;
  batchSize?: number;
}

/** Input, masked input and the reconstruction pasted into the masked blocks, as image rows. */
function reconstructionRows(model: SimMIM, x: tf.Tensor4D, mask: tf.Tensor3D): { masked: RgbImage[]; pasted: RgbImage[]; loss: number } {
  const [masked, pasted, loss] = tf.tidy(() => {
    const [b, h, w] = x.shape;
    const m = repeatMask(mask, model.patchSize).reshape([b, h, w, 1]);
    const rec = model.forward(x, { mask });
    const visible = tf.mul(x, tf.sub(1, m));
    return [visible, tf.add(visible, tf.mul(rec, m)), model.loss(x, { mask })];
  });
  const out = {
    masked: tensorToImages(masked, SHAPES_MEAN, SHAPES_STD),
    pasted: tensorToImages(pasted, SHAPES_MEAN, SHAPES_STD),
    loss: loss.dataSync()[0],
  };
  tf.dispose([masked, pasted, loss]);
  return out;
}

/** Run the notebook: writes two PNGs, returns the mask counts and the held-out losses. */
export async function run(opts: SimMIMNotebookOptions) {
  // 1. masks: four settings, four seeds each
  const inputSize = 32;
  const modelPatchSize = 2;
  const settings = [
    { maskPatchSize: 8, maskRatio: 0.6 },
    { maskPatchSize: 8, maskRatio: 0.3 },
    { maskPatchSize: 4, maskRatio: 0.6 },
    { maskPatchSize: 16, maskRatio: 0.5 },
  ];
  const counts: { maskPatchSize: number; maskRatio: number; blocks: number; masked: number[] }[] = [];
  const maskRows: RgbImage[][] = settings.map((s) => {
    const cells = (inputSize / s.maskPatchSize) ** 2;
    const blockTokens = (s.maskPatchSize / modelPatchSize) ** 2;
    const row: RgbImage[] = [];
    const masked: number[] = [];
    for (let seed = 0; seed < 4; seed++) {
      const m = simmimMask({ inputSize, modelPatchSize, ...s, seed });
      const v = m.dataSync() as Float32Array;
      m.dispose();
      masked.push(v.reduce((a, b) => a + b, 0) / blockTokens);
      const g = inputSize / modelPatchSize;
      row.push({ width: g, height: g, data: Float32Array.from({ length: g * g * 3 }, (_, i) => v[Math.floor(i / 3)]) });
    }
    counts.push({ ...s, blocks: Math.ceil(cells * s.maskRatio), masked });
    return row;
  });
  const fig1 = savePng(opts.out, 'simmim_masks.png', maskRows, { scale: 4, background: [0.6, 0.2, 0.2] });

  // 2. a tiny SwinV2, SimMIM-pretrained for a few dozen steps
  manualSeed(0);
  const backbone = swinV2({
    imgSize: inputSize,
    patchSize: modelPatchSize,
    windowSize: 4,
    embedDim: 16,
    depths: [1, 1],
    numHeads: [1, 2],
    mlpRatio: 2,
    numClasses: 0,
  });
  const model = simmim(backbone, { maskPatchSize: 8, maskRatio: 0.6 });
  const train = syntheticShapes({ imageSize: inputSize, seed: 31 }).batch(Array.from({ length: 512 }, (_, i) => i));
  const held = syntheticShapes({ imageSize: inputSize, seed: 32 }).batch([0, 1, 2, 3, 4, 5]);
  const heldMask = model.generateMask(6, inputSize, 7);
  const before = reconstructionRows(model, held.images, heldMask);
  const trainer = new Trainer<tf.Tensor4D>({
    model,
    lr: 3e-3,
    warmupSteps: 5,
    minLr: 1e-4,
    seed: 0,
    loss: (x, ctx) => model.loss(x, { mask: model.generateMask(x.shape[0], inputSize, ctx.rng), training: true }),
  });
  const steps = opts.steps ?? 60;
  trainer.fit(
    { size: 512, batch: (idx) => tf.tidy(() => tf.gather(train.images, tf.tensor1d(idx, 'int32')) as tf.Tensor4D) },
    { epochs: 100, batchSize: opts.batchSize ?? 32, maxSteps: steps },
  );
  trainer.dispose();
  const after = reconstructionRows(model, held.images, heldMask);
  const inputs = tensorToImages(held.images, SHAPES_MEAN, SHAPES_STD);
  const fig2 = savePng(opts.out, 'simmim_reconstructions.png', [inputs, before.masked, before.pasted, after.pasted], { scale: 3 });
  tf.dispose([train.images, train.labels, held.images, held.labels, heldMask]);
  model.dispose();
  return { figures: [fig1, fig2], masks: counts, heldOutLoss: { before: before.loss, after: after.loss }, steps };
}

runIfMain(import.meta.url, run);
