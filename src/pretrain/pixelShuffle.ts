import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * PyTorch's `nn.PixelShuffle(r)` on NHWC maps (Shi et al. 2016, sec. 2.2): `[B, h, w, C*r*r]` ->
 * `[B, h*r, w*r, C]` with output pixel `(h*r + i, w*r + j)`, channel `c` taken from input channel
 * `c*r*r + i*r + j` (PyTorch's channel order, so a checkpoint's 1x1 decoder conv works unchanged).
 * Rank-4 transposes only.
 */
export function pixelShuffle(x: tf.Tensor, r: number): tf.Tensor4D {
  check(Number.isInteger(r) && r >= 1, () => `pixelShuffle factor must be a positive integer, got ${r}`);
  check(x.rank === 4, () => `pixelShuffle expects NHWC [B, h, w, C*r*r], got shape [${x.shape.join(', ')}]`);
  const [b, h, w, cr] = x.shape;
  check(cr % (r * r) === 0, () => `pixelShuffle: ${cr} channels are not a multiple of r^2 = ${r * r}`);
  const c = cr / (r * r);
  return tf.tidy(
    () =>
      x
        .reshape([b * h * w, c, r * r])
        .transpose([0, 2, 1])
        .reshape([b * h, w, r, r * c])
        .transpose([0, 2, 1, 3])
        .reshape([b, h * r, w * r, c]) as tf.Tensor4D,
  );
}
