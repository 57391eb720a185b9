import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';

/**
 * PyTorch's `nn.AvgPool2d(k)` (stride k, no padding, floor mode) on NHWC maps, as reshapes and means, so it is
 * differentiable on every backend.
 */
export function avgPool2d(x: tf.Tensor, k: number): tf.Tensor4D {
  check(x.rank === 4, () => `avgPool2d expects NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`);
  const [b, h, w, c] = x.shape as [number, number, number, number];
  const ho = Math.floor(h / k);
  const wo = Math.floor(w / k);
  check(ho > 0 && wo > 0, () => `avgPool2d: input ${h}x${w} is smaller than the ${k}x${k} window`);
  if (k === 1) return x.clone() as tf.Tensor4D;
  return tf.tidy(() => {
    const xc = ho * k !== h || wo * k !== w ? tf.slice(x, [0, 0, 0, 0], [b, ho * k, wo * k, c]) : x;
    const rows = tf.sum(xc.reshape([b * ho, k, wo * k * c]), 1); // [B*ho, wo*k*c]
    return tf
      .sum(rows.reshape([b * ho * wo, k, c]), 1)
      .div(k * k)
      .reshape([b, ho, wo, c]) as tf.Tensor4D;
  });
}
