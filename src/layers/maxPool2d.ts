import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** PyTorch's `F.max_pool2d(x, kernelSize, stride)` without padding (floor mode) on an NHWC map. */
export function maxPool2d(x: tf.Tensor, kernelSize: number, stride: number): tf.Tensor4D {
  check(x.rank === 4, () => `maxPool2d expects an NHWC map [B, H, W, C], got shape [${x.shape.join(', ')}]`);
  check(
    (x.shape[1] as number) >= kernelSize && (x.shape[2] as number) >= kernelSize,
    () => `maxPool2d: input ${x.shape[1]}x${x.shape[2]} is smaller than the ${kernelSize}x${kernelSize} window`,
  );
  return tf.maxPool(x as tf.Tensor4D, kernelSize, stride, 'valid');
}
