import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

function checkMap(x: tf.Tensor, what: string): void {
  check(x.rank === 4, () => `${what} expects an NHWC map [B, H, W, C], got shape [${x.shape.join(', ')}]`);
}

/**
 * PyTorch's `F.interpolate(x, size, mode='bilinear', align_corners=False)` on an NHWC map: source
 * coordinate `(dst + 0.5) * in / out - 0.5`, clamped at the borders (no antialiasing). tfjs's
 * `resizeBilinear` with half-pixel centres computes exactly this.
 */
export function resizeBilinear(x: tf.Tensor, size: [number, number]): tf.Tensor4D {
  checkMap(x, 'resizeBilinear');
  check(size[0] > 0 && size[1] > 0, () => `resizeBilinear: output size must be positive, got ${size.join('x')}`);
  if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x.clone() as tf.Tensor4D;
  return tf.image.resizeBilinear(x as tf.Tensor4D, size, false, true);
}

/**
 * PyTorch's `F.interpolate(x, size, mode='nearest')` on an NHWC map: output pixel `i` copies input
 * pixel `floor(i * in / out)` (tfjs's `resizeNearestNeighbor` without corner alignment or half-pixel
 * centres does the same).
 */
export function resizeNearest(x: tf.Tensor, size: [number, number]): tf.Tensor4D {
  checkMap(x, 'resizeNearest');
  check(size[0] > 0 && size[1] > 0, () => `resizeNearest: output size must be positive, got ${size.join('x')}`);
  if (x.shape[1] === size[0] && x.shape[2] === size[1]) return x.clone() as tf.Tensor4D;
  return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, size, false, false);
}

/** PyTorch's `F.max_pool2d(x, k, stride)` without padding (floor mode) on an NHWC map. */
export function maxPool2d(x: tf.Tensor, kernelSize: number, stride: number): tf.Tensor4D {
  checkMap(x, 'maxPool2d');
  check((x.shape[1] as number) >= kernelSize && (x.shape[2] as number) >= kernelSize, () => `maxPool2d: input ${x.shape[1]}x${x.shape[2]} is smaller than the ${kernelSize}x${kernelSize} window`);
  return tf.maxPool(x as tf.Tensor4D, kernelSize, stride, 'valid');
}
