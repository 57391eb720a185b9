import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * PyTorch's adaptive average pooling bins: output cell `i` of `o` averages input rows
 * `[floor(i n / o), ceil((i + 1) n / o))` (bins may overlap and differ in size when `o` does not divide `n`).
 * Returns the `[o, n]` averaging matrix.
 */
export function adaptivePoolMatrix(n: number, o: number): Float32Array {
  const m = new Float32Array(o * n);
  for (let i = 0; i < o; i++) {
    const s = Math.floor((i * n) / o);
    const e = Math.ceil(((i + 1) * n) / o);
    for (let j = s; j < e; j++) m[i * n + j] = 1 / (e - s);
  }
  return m;
}

/**
 * `F.adaptive_avg_pool2d` on an NHWC map: `[B, H, W, C]` -> `[B, oh, ow, C]`, exact PyTorch bins.
 * Computed as two 2-D matmuls with averaging matrices, so it is differentiable on every backend.
 */
export function adaptiveAvgPool2d(x: tf.Tensor, outSize: number | [number, number]): tf.Tensor4D {
  check(x.rank === 4, () => `adaptiveAvgPool2d expects NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`);
  const [oh, ow] = Array.isArray(outSize) ? outSize : [outSize, outSize];
  const [b, h, w, c] = x.shape;
  check(oh > 0 && ow > 0, () => `adaptiveAvgPool2d output size must be positive, got ${oh}x${ow}`);
  return tf.tidy(() => {
    const ph = tf.tensor2d(adaptivePoolMatrix(h, oh), [oh, h]);
    const pw = tf.tensor2d(adaptivePoolMatrix(w, ow), [ow, w]);
    const xh = x.transpose([1, 0, 2, 3]).reshape([h, b * w * c]);
    const yh = tf.matMul(ph, xh).reshape([oh, b, w, c]); // pooled over H
    const xw = yh.transpose([2, 1, 0, 3]).reshape([w, b * oh * c]); // [W, B, oh, C]
    const yw = tf.matMul(pw, xw).reshape([ow, b, oh, c]);
    return yw.transpose([1, 2, 0, 3]) as tf.Tensor4D; // [B, oh, ow, C]
  });
}
