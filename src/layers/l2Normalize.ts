import * as tf from '@tensorflow/tfjs';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * The L2 norm over the last axis (kept as size 1). Its gradient is `x / norm`, and 0 where the norm is 0
 * (PyTorch's convention), where the plain `sqrt(sum(x^2))` would give `0 * inf = NaN`.
 */
export const l2Norm = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const n = tf.sqrt(tf.sum(tf.square(x), -1, true));
  save([x, n]);
  return {
    value: n,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sn] = saved;
      return tf.mul(dy, tf.div(sx, tf.maximum(sn, 1e-30)));
    },
  };
}) as unknown as CustomGradFn) as (x: tf.Tensor) => tf.Tensor;

/**
 * `F.normalize(x, dim=-1)`: `x / max(||x||_2, eps)` over the last axis, with a finite gradient where a
 * row is all zeros ({@link l2Norm}). `eps = 0` is the plain `x / ||x||`.
 */
export function l2Normalize(x: tf.Tensor, eps = 1e-12): tf.Tensor {
  return tf.tidy(() => tf.div(x, tf.maximum(l2Norm(x), eps)));
}
