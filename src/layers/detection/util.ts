import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';

/** Detection box arrays: `[N, 4]` float32 `(x1, y1, x2, y2)`. */
export type ImageSize = [number, number];

/** Check that `boxes` is an `[N, 4]` tensor; `what` names it in the message. */
export function checkBoxes(boxes: tf.Tensor, what: string): void {
  check(boxes instanceof tf.Tensor, () => `${what} must be a tf.Tensor of shape [N, 4], got ${typeof boxes}`);
  check(boxes.rank === 2 && boxes.shape[1] === 4, () => `${what} must have shape [N, 4] (x1, y1, x2, y2), got [${boxes.shape.join(', ')}]`);
}

/** Check an image size `[height, width]`. */
export function checkImageSize(size: unknown, what: string): asserts size is ImageSize {
  check(
    Array.isArray(size) && size.length === 2 && size.every((v) => Number.isFinite(v) && v >= 0),
    () => `${what} must be [height, width] with non-negative numbers, got ${JSON.stringify(size)}`,
  );
}

/** Values of an integer input (an int32 / float tensor or a plain array) as an Int32Array. */
export function intValues(x: tf.Tensor | ArrayLike<number>, what: string): Int32Array {
  if (x instanceof tf.Tensor) {
    check(x.rank <= 1, () => `${what} must be a 1-D tensor, got shape [${x.shape.join(', ')}]`);
    return Int32Array.from(x.dataSync() as ArrayLike<number>);
  }
  check(Array.isArray(x) || ArrayBuffer.isView(x), () => `${what} must be an int32 tensor or a number array`);
  return Int32Array.from(x as ArrayLike<number>);
}

/** Float32 values of a tensor. */
export function floatValues(x: tf.Tensor): Float32Array {
  const d = x.dataSync();
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/**
 * The float32 values of the tensor `fn` builds inside `tf.tidy` (intermediates freed). Returning a typed
 * array from `tf.tidy` itself would make tidy walk it element by element looking for tensors (seconds for
 * the 4.5 M scores of a 512 px RetinaNet).
 */
export function tidyValues(fn: () => tf.Tensor): Float32Array {
  const t = tf.tidy(fn);
  try {
    return floatValues(t);
  } finally {
    t.dispose();
  }
}

/** An int32 tensor from plain values. */
export function int32Tensor(values: ArrayLike<number>): tf.Tensor1D {
  return tf.tensor1d(Int32Array.from(values), 'int32');
}

/** Round half to even (torch.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
