import * as tf from '@tensorflow/tfjs';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * Small differentiable helpers whose gradients stay finite where the plain formulas divide by zero,
 * matching PyTorch's conventions (the gradient of a norm at 0 is 0) so targets built from them can be
 * differentiated on every backend. The gradient-safe L2 norm and normalisation are in
 * `src/layers/l2Normalize.ts`.
 */

/** The identity with a zero gradient (PyTorch's `x.detach()` inside a graph). */
export const stopGradient = tf.customGrad(((x: tf.Tensor) => ({
  value: x.clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as CustomGradFn) as (x: tf.Tensor) => tf.Tensor;

/** `sqrt(a^2 + b^2)` element-wise; its gradient is `(a, b) / norm`, and 0 where the norm is 0. */
export const hypot = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  const n = tf.sqrt(tf.add(tf.square(a), tf.square(b)));
  save([a, b, n]);
  return {
    value: n,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb, sn] = saved;
      // ratios first (bounded by 1), so a huge upstream gradient cannot meet 0 * inf
      const n = tf.maximum(sn, 1e-30);
      return [tf.mul(dy, tf.div(sa, n)), tf.mul(dy, tf.div(sb, n))];
    },
  };
}) as unknown as CustomGradFn) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
