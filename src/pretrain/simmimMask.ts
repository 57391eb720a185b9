import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, checkRatio } from './maskUtils.js';
import { SeedLike, toRng } from './rng.js';

/** Options of {@link simmimMask} (the official `MaskGenerator` arguments, camelCase). */
export interface SimMIMMaskOptions {
  /** Input image size (square). */
  inputSize: number;
  /** Side of a masked block in pixels (32 in SimMIM). */
  maskPatchSize: number;
  /** Patch size of the model (4 for Swin, 16 for ViT). */
  modelPatchSize: number;
  /** Fraction of blocks masked (0.6 in SimMIM). */
  maskRatio: number;
  /** Seed, or a generator to draw from (advanced by the call). Default: random. */
  seed?: SeedLike;
}

/** The geometry {@link simmimMask} derives from its options (the official generator's fields). */
export function simmimMaskGeometry(opts: SimMIMMaskOptions): {
  randSize: number;
  scale: number;
  tokenCount: number;
  maskCount: number;
  gridSize: number;
} {
  const { inputSize, maskPatchSize, modelPatchSize, maskRatio } = opts;
  checkPositiveInt('inputSize', inputSize);
  checkPositiveInt('maskPatchSize', maskPatchSize);
  checkPositiveInt('modelPatchSize', modelPatchSize);
  checkRatio('maskRatio', maskRatio);
  check(inputSize % maskPatchSize === 0, () => `inputSize ${inputSize} is not divisible by maskPatchSize ${maskPatchSize}`);
  check(maskPatchSize % modelPatchSize === 0, () => `maskPatchSize ${maskPatchSize} is not divisible by modelPatchSize ${modelPatchSize}`);
  const randSize = inputSize / maskPatchSize;
  const tokenCount = randSize * randSize;
  return {
    randSize,
    scale: maskPatchSize / modelPatchSize,
    tokenCount,
    maskCount: Math.ceil(tokenCount * maskRatio),
    gridSize: inputSize / modelPatchSize,
  };
}

/** One SimMIM mask as a row-major 0/1 array over the model's patch grid. */
function simmimMaskArray(opts: SimMIMMaskOptions, rng = toRng(opts.seed)): Float32Array {
  const { randSize, scale, tokenCount, maskCount, gridSize } = simmimMaskGeometry(opts);
  const perm = rng.permutation(tokenCount);
  const cells = new Uint8Array(tokenCount);
  for (let i = 0; i < maskCount; i++) cells[perm[i]] = 1;
  const out = new Float32Array(gridSize * gridSize);
  for (let r = 0; r < gridSize; r++) {
    for (let c = 0; c < gridSize; c++) out[r * gridSize + c] = cells[Math.floor(r / scale) * randSize + Math.floor(c / scale)];
  }
  return out;
}

/**
 * SimMIM's random mask (Xie et al. 2022, sec. 3.1 "masking strategy"): exactly
 * `ceil(cells * maskRatio)` of the `(inputSize / maskPatchSize)^2` blocks are masked (a uniformly
 * random subset), each block repeated to the model's patch grid. Returns
 * `[inputSize / modelPatchSize, inputSize / modelPatchSize]` of 0/1, 1 = masked.
 */
export function simmimMask(opts: SimMIMMaskOptions): tf.Tensor2D {
  const g = simmimMaskGeometry(opts).gridSize;
  return tf.tensor2d(simmimMaskArray(opts), [g, g]);
}

/** `batch` independent {@link simmimMask}s drawn from one seed: `[batch, g, g]`. */
export function simmimMasks(batch: number, opts: SimMIMMaskOptions): tf.Tensor3D {
  checkPositiveInt('batch', batch);
  const g = simmimMaskGeometry(opts).gridSize;
  const rng = toRng(opts.seed);
  const out = new Float32Array(batch * g * g);
  for (let b = 0; b < batch; b++) out.set(simmimMaskArray(opts, rng), b * g * g);
  return tf.tensor3d(out, [batch, g, g]);
}
