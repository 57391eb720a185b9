import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, checkRatio, repeatMask, toPair } from './maskUtils.js';
import { SeedLike, toRng } from './rng.js';

/** Options of {@link mixmimMask}. */
export interface MixMIMMaskOptions {
  /** Image size (square number or `[H, W]`). */
  inputSize: number | [number, number];
  /** Stride of the encoder output, where the mask is drawn (32 for a 4-stage Swin with patch 4). */
  encoderStride: number;
  /** Number of encoder stages; stage `i` runs at stride `encoderStride / 2^(numStages - 1 - i)`. */
  numStages: number;
  /** Fraction of tokens taken from the partner image (0.5 in MixMIM). */
  maskRatio: number;
  /** Extra ratio drawn uniformly in `[0, rangeMaskRatio)` per call (MixMIM's `range_mask_ratio`, default 0). */
  rangeMaskRatio?: number;
  seed?: SeedLike;
}

/** A MixMIM mask: the batch-shared grid at the encoder stride and its per-stage nearest upsampled copies. */
export interface MixMIMMask {
  /** `[H / encoderStride, W / encoderStride]` 0/1, 1 = token taken from the partner image. */
  mask: tf.Tensor2D;
  /** One `[h_i, w_i]` copy per stage, finest first (the last equals `mask`). */
  stageMasks: tf.Tensor2D[];
}

/**
 * MixMIM's mixing mask (Liu et al. 2023, sec. 3.1; `MixMIM.random_masking`): ONE mask shared by the
 * whole batch, `floor(L * ratio)` of the `L` encoder-stride tokens set to 1 (a uniformly random
 * subset), with nearest-upsampled copies for every stage's token grid. The caller disposes the tensors.
 */
export function mixmimMask(opts: MixMIMMaskOptions): MixMIMMask {
  checkPositiveInt('encoderStride', opts.encoderStride);
  checkPositiveInt('numStages', opts.numStages);
  checkRatio('maskRatio', opts.maskRatio);
  const range = opts.rangeMaskRatio ?? 0;
  check(range >= 0 && opts.maskRatio + range < 1, () => `rangeMaskRatio must be >= 0 with maskRatio + rangeMaskRatio < 1, got ${range}`);
  const [H, W] = toPair(opts.inputSize);
  const s = opts.encoderStride;
  check(H % s === 0 && W % s === 0, () => `image size ${H}x${W} is not divisible by the encoder stride ${s}`);
  const down = 2 ** (opts.numStages - 1);
  check(s % down === 0, () => `encoderStride ${s} is not divisible by 2^(numStages - 1) = ${down}`);
  const h = H / s;
  const w = W / s;
  const l = h * w;
  const rng = toRng(opts.seed);
  const ratio = opts.maskRatio + (range > 0 ? rng.uniformRange(0, range) : 0);
  const count = Math.floor(l * ratio);
  const perm = rng.permutation(l);
  const data = new Float32Array(l);
  for (let i = 0; i < count; i++) data[perm[i]] = 1;
  const mask = tf.tensor2d(data, [h, w]);
  const stageMasks = Array.from({ length: opts.numStages }, (_, i) => repeatMask(mask, 2 ** (opts.numStages - 1 - i)));
  return { mask, stageMasks };
}

/** Release the tensors of a {@link MixMIMMask}. */
export function disposeMixMIMMask(m: MixMIMMask): void {
  tf.dispose([m.mask, ...m.stageMasks]);
}
