/**
 * The four pretraining methods of the lab, each as: the wrapper around a tiny registry backbone, its
 * loss on a batch (with a fresh mask per step), and a preview (input / mask / reconstruction tiles for
 * the first images of a fixed batch). Everything here runs on any tfjs backend, in a page or in Node.
 */
import * as tf from '@tensorflow/tfjs';
import {
  Backbone,
  disposeMixMIMMask,
  fastmim,
  fcmae,
  getFamily,
  getModelEntry,
  listFamilies,
  manualSeed,
  mixmim,
  mixWithPartner,
  Module,
  repeatMask,
  SeededRandom,
  simmim,
  unpatchify,
} from '../../src/index.js';
import type { ConvNeXt, FastMIM, FCMAE, MixMIM, SimMIM, SwinTransformer } from '../../src/index.js';
import { RgbImage, tensorToImages } from '../../src/viz/imageGrid.js';

export const METHODS = ['simmim', 'mixmim', 'fastmim', 'fcmae'] as const;
export type MethodName = (typeof METHODS)[number];

/** Display names and the paper of each method. */
export const METHOD_INFO: Record<MethodName, { title: string; target: string }> = {
  simmim: { title: 'SimMIM (Xie et al. 2022)', target: 'masked pixels, L1' },
  mixmim: { title: 'MixMIM (Liu et al. 2023)', target: 'both mixed images, MSE' },
  fastmim: { title: 'FastMIM (Guo et al. 2022)', target: 'HOG of masked tokens, MSE' },
  fcmae: { title: 'FCMAE (Woo et al. 2023)', target: 'removed patches, MSE' },
};

/** One picture of the preview grid: an RGB image, or HOG histograms drawn as glyphs over a cell grid. */
export type Tile =
  | { kind: 'rgb'; image: RgbImage }
  | { kind: 'hog'; width: number; height: number; cells: Float32Array; gridH: number; gridW: number; nbins: number };

/** The preview grid: one column per label, one tile per image in every column. */
export interface Preview {
  columns: { label: string; tiles: Tile[] }[];
}

/** What the lab trains. */
export interface LabMethod {
  name: MethodName;
  /** The family of the backbone (registry name) and the image size it was built for. */
  family: string;
  imgSize: number;
  /** The pretraining wrapper: what is trained and checkpointed. */
  model: Module;
  backbone: Backbone;
  /** Peak learning rate that suits the tiny models. */
  lr: number;
  /** Loss of a batch of normalised NHWC images (a fresh mask from `rng`). */
  loss(batch: tf.Tensor4D, rng: SeededRandom): tf.Scalar;
  /** Tiles for `batch` (normalised with mean / std) under the mask drawn from `seed`. */
  preview(batch: tf.Tensor4D, seed: number, mean: number[], std: number[]): Preview;
  dispose(): void;
}

/** Options of {@link buildMethod}. */
export interface BuildOptions {
  method: MethodName;
  /** A family name (`listFamilies()`) or a registered variant name (`listModels()`): its family's tiny config is built. */
  model: string;
  imgSize: number;
  seed: number;
}

/** The family of a family or variant name. */
export function familyOf(name: string): string {
  if (listFamilies().some((f) => f.name === name)) return name;
  return getModelEntry(name).family;
}

/** The tiny backbone of a family, as {@link buildMethod} builds it (with the init RNG seeded first), for the random-init control. */
export function tinyBackbone(family: string, imgSize: number, method: MethodName, seed: number): Backbone {
  manualSeed(seed);
  return getFamily(family).tiny(imgSize, method === 'fcmae' ? { featuresOnly: true } : {});
}

/** Run `fn` and dispose every tensor it made (`tf.tidy` for functions that return plain data). */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

const rgb = (images: RgbImage[]): Tile[] => images.map((image) => ({ kind: 'rgb', image }));

/** Display tiles of normalised NHWC images. */
function tiles(x: tf.Tensor, mean: number[], std: number[]): Tile[] {
  return rgb(tensorToImages(x, mean, std));
}

/** `[B, h, w]` 0/1 mask as white-on-black pixel images of `size`. */
function maskTiles(mask: tf.Tensor, size: number): Tile[] {
  return scoped(() => {
    const m = mask.toFloat() as tf.Tensor3D;
    const px = repeatMask(m, size / m.shape[1])
      .expandDims(-1)
      .tile([1, 1, 1, 3]);
    return tiles(px, [0, 0, 0], [1, 1, 1]);
  });
}

/** Images with the masked pixels grey (`mask` `[B, h, w]`). */
function maskedTiles(x: tf.Tensor4D, mask: tf.Tensor, mean: number[], std: number[]): Tile[] {
  return scoped(() => {
    const m = mask.toFloat() as tf.Tensor3D;
    const px = repeatMask(m, x.shape[1] / m.shape[1]).expandDims(-1);
    const grey = tf.tensor1d(mean.map((v, i) => (0.5 - v) / std[i]));
    return tiles(tf.add(tf.mul(x, tf.sub(1, px)), tf.mul(grey, px)), mean, std);
  });
}

/** The prediction where the mask is 1 and the input elsewhere (`mask` `[B, h, w]`), as MAE shows its reconstructions. */
function pastedTiles(x: tf.Tensor4D, rec: tf.Tensor, mask: tf.Tensor, mean: number[], std: number[]): Tile[] {
  return scoped(() => {
    const m = mask.toFloat() as tf.Tensor3D;
    const px = repeatMask(m, x.shape[1] / m.shape[1]).expandDims(-1);
    return tiles(tf.add(tf.mul(x, tf.sub(1, px)), tf.mul(rec, px)), mean, std);
  });
}

/** The tiny backbone of `opts` wrapped for its method. */
/** The preview of a pixel-reconstruction method: input, mask, masked input, reconstruction, reconstruction pasted into the masked blocks. */
function reconstructionColumns(x: tf.Tensor4D, mask: tf.Tensor, rec: tf.Tensor, imgSize: number, mean: number[], std: number[]) {
  return [
    { label: 'input', tiles: tiles(x, mean, std) },
    { label: 'mask', tiles: maskTiles(mask, imgSize) },
    { label: 'masked input', tiles: maskedTiles(x, mask, mean, std) },
    { label: 'reconstruction', tiles: tiles(rec, mean, std) },
    { label: 'prediction + visible', tiles: pastedTiles(x, rec, mask, mean, std) },
  ];
}

export function buildMethod(opts: BuildOptions): LabMethod {
  const family = familyOf(opts.model);
  const s = opts.imgSize;
  const backbone = tinyBackbone(family, s, opts.method, opts.seed);
  try {
    switch (opts.method) {
      case 'simmim':
        return simmimMethod(
          simmim(backbone, { maskPatchSize: Math.max(backbone.featureInfo[0].reduction, s / 4), maskRatio: 0.6 }),
          family,
          s,
        );
      case 'mixmim':
        return mixmimMethod(
          mixmim(backbone as SwinTransformer, { decoderDim: 32, decoderDepth: 1, decoderNumHeads: 2, normPixLoss: false }),
          family,
          s,
        );
      case 'fastmim':
        return fastmimMethod(fastmim(backbone, { decoderDim: 32, decoderDepth: 1, decoderNumHeads: 2, hogPool: 8 }), family, s);
      case 'fcmae':
        return fcmaeMethod(fcmae(backbone as ConvNeXt, { decoderDim: 32, decoderDepth: 1, normPixLoss: false }), family, s);
    }
  } catch (e) {
    backbone.dispose();
    throw e;
  }
}

/** Whether `method` can wrap the tiny backbone of `family` (e.g. MixMIM needs a Swin). */
export function supports(method: MethodName, family: string, imgSize: number): boolean {
  try {
    buildMethod({ method, model: family, imgSize, seed: 0 }).dispose();
    return true;
  } catch {
    return false;
  }
}

function simmimMethod(model: SimMIM, family: string, imgSize: number): LabMethod {
  return {
    name: 'simmim',
    family,
    imgSize,
    model,
    backbone: model.backbone,
    lr: 2e-3,
    loss: (x, rng) => tf.tidy(() => model.loss(x, { mask: model.generateMask(x.shape[0], imgSize, rng), training: true })),
    preview: (x, seed, mean, std) =>
      scoped(() => {
        const mask = model.generateMask(x.shape[0], imgSize, seed);
        const rec = model.forward(x, { mask });
        return {
          columns: reconstructionColumns(x, mask, rec, imgSize, mean, std),
        };
      }),
    dispose: () => model.dispose(),
  };
}

function mixmimMethod(model: MixMIM, family: string, imgSize: number): LabMethod {
  const s = model.encoderStride;
  const h = imgSize / s;
  return {
    name: 'mixmim',
    family,
    imgSize,
    model,
    backbone: model.backbone,
    lr: 2e-3,
    loss: (x, rng) => {
      const mask = model.generateMask(rng);
      try {
        return model.loss(x, { mask, training: true });
      } finally {
        disposeMixMIMMask(mask);
      }
    },
    preview: (x, seed, mean, std) => {
      const mask = model.generateMask(seed);
      try {
        return scoped(() => {
          const b = x.shape[0];
          const rec = model.forward(x, { mask });
          // unmix as the loss does: rows [0, B) predict the tokens taken from the partner, rows [B, 2B) the others
          const m = mask.mask.toFloat().reshape([1, h * h, 1]);
          const own = rec.slice([0, 0, 0], [b, -1, -1]);
          const partner = tf.reverse(rec.slice([b, 0, 0], [b, -1, -1]), 0);
          const full = unpatchify(tf.add(tf.mul(own, m), tf.mul(partner, tf.sub(1, m))), s, [h, h]);
          const pix = repeatMask(mask.mask.toFloat().expandDims(0) as tf.Tensor3D, s).reshape([imgSize, imgSize]);
          const masks = tf.tile(mask.mask.expandDims(0), [b, 1, 1]);
          return {
            columns: [
              { label: 'input', tiles: tiles(x, mean, std) },
              { label: 'mask (from partner)', tiles: maskTiles(masks, imgSize) },
              { label: 'mixed input', tiles: tiles(mixWithPartner(x, pix), mean, std) },
              { label: 'reconstruction', tiles: tiles(full, mean, std) },
            ],
          };
        });
      } finally {
        disposeMixMIMMask(mask);
      }
    },
    dispose: () => model.dispose(),
  };
}

/** Per-cell histograms `[B, L, k * u * u]` (k = colour * nbins + bin, cells in row order) as HOG tiles summed over colours. */
function hogTiles(t: tf.Tensor3D, model: FastMIM, imgSize: number): Tile[] {
  const nbins = model.opts.hogBins;
  const u = model.cellsPerToken;
  const h = imgSize / model.encoderStride;
  const [b, , d] = t.shape;
  const c = d / (u * u * nbins);
  const v = scoped(() =>
    t
      .reshape([b, h, h, c, nbins, u, u])
      .sum(3) // [b, h, w, nbins, u, u]
      .transpose([0, 1, 4, 2, 5, 3]) // [b, h, u_row, w, u_col, nbins]
      .reshape([b, h * u * h * u * nbins])
      .arraySync(),
  ) as number[][];
  return v.map((row) => ({
    kind: 'hog',
    width: imgSize,
    height: imgSize,
    cells: Float32Array.from(row),
    gridH: h * u,
    gridW: h * u,
    nbins,
  }));
}

function fastmimMethod(model: FastMIM, family: string, imgSize: number): LabMethod {
  return {
    name: 'fastmim',
    family,
    imgSize,
    model,
    backbone: model.backbone,
    lr: 2e-3,
    loss: (x, rng) => tf.tidy(() => model.loss(x, { mask: model.generateMask(x.shape[0], imgSize, rng), training: true })),
    preview: (x, seed, mean, std) => {
      const mask = model.generateMask(x.shape[0], imgSize, seed);
      const pred = model.forward(x, { mask });
      const target = model.hogTarget(x);
      try {
        return {
          columns: [
            { label: 'input', tiles: tiles(x, mean, std) },
            { label: 'mask', tiles: maskTiles(mask, imgSize) },
            { label: 'masked input', tiles: maskedTiles(x, mask, mean, std) },
            { label: 'HOG target', tiles: hogTiles(target, model, imgSize) },
            { label: 'predicted HOG', tiles: hogTiles(pred, model, imgSize) },
          ],
        };
      } finally {
        tf.dispose([mask, pred, target]);
      }
    },
    dispose: () => model.dispose(),
  };
}

function fcmaeMethod(model: FCMAE, family: string, imgSize: number): LabMethod {
  const s = model.stride;
  return {
    name: 'fcmae',
    family,
    imgSize,
    model,
    backbone: model.backbone,
    lr: 1e-2,
    loss: (x, rng) => tf.tidy(() => model.loss(x, { mask: model.generateMask(x.shape[0], imgSize, rng), training: true })),
    preview: (x, seed, mean, std) =>
      scoped(() => {
        const mask = model.generateMask(x.shape[0], imgSize, seed);
        const pred = model.forward(x, { mask });
        const [b, h, w, d] = pred.shape;
        const rec = unpatchify(pred.reshape([b, h * w, d]), s, [h, w]);
        return {
          columns: reconstructionColumns(x, mask, rec, imgSize, mean, std),
        };
      }),
    dispose: () => model.dispose(),
  };
}
