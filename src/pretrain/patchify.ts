import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt } from './maskUtils.js';

/**
 * MAE's `patchify` on NHWC images (He et al. 2022, sec. 3 "reconstruction target"): `[B, H, W, C]` ->
 * `[B, (H/p)(W/p), p*p*C]`, tokens row-major over the patch grid and each patch vector in
 * (row p, column q, channel c) order (the official `einsum('nchpwq->nhwpqc')`). Rank-4 transposes only.
 */
export function patchify(images: tf.Tensor, patchSize: number): tf.Tensor3D {
  checkPositiveInt('patchSize', patchSize);
  check(images.rank === 4, () => `patchify expects NHWC images [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  const [b, H, W, c] = images.shape;
  const p = patchSize;
  check(H % p === 0 && W % p === 0, () => `image size ${H}x${W} is not divisible by the patch size ${p}`);
  const h = H / p;
  const w = W / p;
  return tf.tidy(() =>
    images
      .reshape([b * h, p, w, p * c])
      .transpose([0, 2, 1, 3])
      .reshape([b, h * w, p * p * c]),
  );
}

/**
 * Inverse of {@link patchify}: `[B, h*w, p*p*C]` -> NHWC `[B, h*p, w*p, C]` for a `[h, w]` patch grid
 * (default square).
 */
export function unpatchify(tokens: tf.Tensor, patchSize: number, grid?: [number, number]): tf.Tensor4D {
  checkPositiveInt('patchSize', patchSize);
  check(tokens.rank === 3, () => `unpatchify expects tokens [B, L, p*p*C], got shape [${tokens.shape.join(', ')}]`);
  const [b, l, d] = tokens.shape;
  const p = patchSize;
  check(d % (p * p) === 0, () => `token width ${d} is not a multiple of patchSize^2 = ${p * p}`);
  const c = d / (p * p);
  let hw = grid;
  if (!hw) {
    const s = Math.round(Math.sqrt(l));
    check(s * s === l, () => `${l} tokens do not form a square grid: pass the grid [h, w]`);
    hw = [s, s];
  }
  const [h, w] = hw;
  check(h * w === l, () => `grid ${h}x${w} does not hold ${l} tokens`);
  return tf.tidy(
    () =>
      tokens
        .reshape([b * h, w, p, p * c])
        .transpose([0, 2, 1, 3])
        .reshape([b, h * p, w * p, c]) as tf.Tensor4D,
  );
}

/**
 * Per-patch target normalisation of MAE / MixMIM / FCMAE (`norm_pix_loss`, He et al. 2022, sec. 3):
 * `(t - mean) / sqrt(var + eps)` over the last axis with the UNBIASED variance (`torch.var` default).
 */
export function normalizePatches(target: tf.Tensor, eps = 1e-6): tf.Tensor {
  const n = target.shape[target.rank - 1];
  check(n > 1, () => `per-patch normalisation needs more than one value per patch, got ${n}`);
  return tf.tidy(() => {
    const mean = tf.mean(target, -1, true);
    const centered = tf.sub(target, mean);
    const varUnbiased = tf.div(tf.sum(tf.square(centered), -1, true), n - 1);
    return tf.div(centered, tf.sqrt(tf.add(varUnbiased, eps)));
  });
}
