import type * as tf from '@tensorflow/tfjs';
import type { ForwardOptions } from '../../layers/module.js';

/** Whether `x` is a tensor (duck-typed, so tensors of any tfjs instance pass). */
export function isTensor(x: unknown): x is tf.Tensor {
  return typeof x === 'object' && x !== null && Array.isArray((x as tf.Tensor).shape) && typeof (x as tf.Tensor).dataSync === 'function';
}

/** A second `forward` argument that is either a tensor or forward options. */
export type TensorOrOptions = tf.Tensor | ForwardOptions;

/** Split `forward(x, second, opts)` into the second tensor (if given) and the options. */
export function tensorArg(
  second: TensorOrOptions | undefined,
  opts: ForwardOptions | undefined,
): { t: tf.Tensor | null; opts: ForwardOptions } {
  if (isTensor(second)) return { t: second, opts: opts ?? {} };
  return { t: null, opts: { ...(second ?? {}), ...(opts ?? {}) } };
}
