import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, checkRatio, toPair } from './maskUtils.js';
import { SeedLike, toRng } from './rng.js';

/** Options of {@link fcmaeMask}. */
export interface FCMAEMaskOptions {
  batch: number;
  /** Image size (square number or `[H, W]`). */
  inputSize: number | [number, number];
  /** Mask patch size in pixels (32 in FCMAE = the encoder's total stride). */
  patchSize: number;
  /** Fraction removed (0.6 in FCMAE); each sample keeps `floor(L * (1 - maskRatio))` patches. */
  maskRatio: number;
  seed?: SeedLike;
}

/**
 * FCMAE's per-sample random patch mask (ConvNeXt V2, Woo et al. 2023, sec. 3 "masking";
 * `FCMAE.gen_random_mask`): `[B, H/p, W/p]` of 0/1, 1 = removed, each sample keeping an independent
 * uniformly random set of `floor(L * (1 - maskRatio))` patches.
 */
export function fcmaeMask(opts: FCMAEMaskOptions): tf.Tensor3D {
  checkPositiveInt('batch', opts.batch);
  checkPositiveInt('patchSize', opts.patchSize);
  checkRatio('maskRatio', opts.maskRatio);
  const [H, W] = toPair(opts.inputSize);
  const p = opts.patchSize;
  check(H % p === 0 && W % p === 0, () => `image size ${H}x${W} is not divisible by the mask patchSize ${p}`);
  const h = H / p;
  const w = W / p;
  const l = h * w;
  const lenKeep = Math.floor(l * (1 - opts.maskRatio));
  const rng = toRng(opts.seed);
  const out = new Float32Array(opts.batch * l).fill(1);
  for (let b = 0; b < opts.batch; b++) {
    const perm = rng.permutation(l);
    for (let i = 0; i < lenKeep; i++) out[b * l + perm[i]] = 0;
  }
  return tf.tensor3d(out, [opts.batch, h, w]);
}
