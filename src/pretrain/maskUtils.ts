import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * Nearest upsampling of a patch mask by an integer factor over its last two axes: `[h, w]` ->
 * `[h f, w f]` or `[B, h, w]` -> `[B, h f, w f]` (PyTorch's `repeat_interleave(f)` on both axes, which
 * is also `F.interpolate(mode='nearest')` for an integer scale). 1 = masked.
 */
export function repeatMask<T extends tf.Tensor2D | tf.Tensor3D>(mask: T, factor: number): T {
  check(Number.isInteger(factor) && factor >= 1, () => `mask upsampling factor must be a positive integer, got ${factor}`);
  check(mask.rank === 2 || mask.rank === 3, () => `expected a mask [h, w] or [B, h, w], got shape [${mask.shape.join(', ')}]`);
  if (factor === 1) return mask.clone() as T;
  return tf.tidy(() => {
    const [h, w] = mask.shape.slice(-2);
    const n = mask.rank === 3 ? mask.shape[0] : 1;
    const m = mask.reshape([n * h, 1, w, 1]);
    const up = tf.mul(m, tf.ones([1, factor, 1, factor]));
    return (mask.rank === 3 ? up.reshape([n, h * factor, w * factor]) : up.reshape([h * factor, w * factor])) as unknown as T;
  });
}

/** Validate a masking ratio in [0, 1). */
export function checkRatio(name: string, r: number): void {
  check(Number.isFinite(r) && r >= 0 && r < 1, () => `${name} must be in [0, 1), got ${r}`);
}

/** Validate a positive integer option. */
export function checkPositiveInt(name: string, v: number): void {
  check(Number.isInteger(v) && v > 0, () => `${name} must be a positive integer, got ${v}`);
}

/** `[H, W]` from a square size or a pair. */
export function toPair(v: number | [number, number]): [number, number] {
  return Array.isArray(v) ? [v[0], v[1]] : [v, v];
}
