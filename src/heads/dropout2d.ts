import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * Channel dropout (`nn.Dropout2d`, Tompson et al. 2015): in training, zero whole channels of each
 * sample with probability `p` and scale the rest by `1 / (1 - p)`; the identity in eval.
 */
export function dropout2d(x: tf.Tensor, p: number, training: boolean): tf.Tensor {
  if (!training || p <= 0) return x.clone();
  check(x.rank === 4, () => `dropout2d expects an NHWC map, got shape [${x.shape.join(', ')}]`);
  return tf.dropout(x, p, [x.shape[0], 1, 1, x.shape[3] as number]);
}
