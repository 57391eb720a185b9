import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { checkBoxes, checkImageSize, floatValues, ImageSize, int32Tensor } from './util.js';

const f = Math.fround;

/** `(x2 - x1) (y2 - y1)` of `[N, 4]` boxes -> `[N]` (torchvision's `box_area`). */
export function boxArea(boxes: tf.Tensor2D): tf.Tensor1D {
  checkBoxes(boxes, 'boxArea: boxes');
  return tf.tidy(() => {
    const [x1, y1, x2, y2] = tf.unstack(boxes, 1);
    return tf.mul(tf.sub(x2, x1), tf.sub(y2, y1)) as tf.Tensor1D;
  });
}

/** Intersection and union of every pair (torchvision's `_box_inter_union`). */
function interUnion(b1: tf.Tensor2D, b2: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  const a1 = boxArea(b1);
  const a2 = boxArea(b2);
  const lt = tf.maximum(tf.expandDims(tf.slice(b1, [0, 0], [-1, 2]), 1), tf.expandDims(tf.slice(b2, [0, 0], [-1, 2]), 0));
  const rb = tf.minimum(tf.expandDims(tf.slice(b1, [0, 2], [-1, 2]), 1), tf.expandDims(tf.slice(b2, [0, 2], [-1, 2]), 0));
  const wh = tf.relu(tf.sub(rb, lt));
  const [w, h] = tf.unstack(wh, 2);
  const inter = tf.mul(w, h) as tf.Tensor2D;
  const union = tf.sub(tf.add(tf.expandDims(a1, 1), tf.expandDims(a2, 0)), inter) as tf.Tensor2D;
  return [inter, union];
}

/**
 * Pairwise IoU `[N, M]` of two box sets (torchvision `box_iou`, float32; two zero-area boxes give
 * 0 / 0 = NaN). Differentiable.
 */
export function boxIou(boxes1: tf.Tensor2D, boxes2: tf.Tensor2D): tf.Tensor2D {
  checkBoxes(boxes1, 'boxIou: boxes1');
  checkBoxes(boxes2, 'boxIou: boxes2');
  return tf.tidy(() => {
    const [inter, union] = interUnion(boxes1, boxes2);
    return tf.div(inter, union) as tf.Tensor2D;
  });
}

/** Pairwise generalized IoU (Rezatofighi et al. 2019, Alg. 1), torchvision `generalized_box_iou`. */
export function generalizedBoxIou(boxes1: tf.Tensor2D, boxes2: tf.Tensor2D): tf.Tensor2D {
  checkBoxes(boxes1, 'generalizedBoxIou: boxes1');
  checkBoxes(boxes2, 'generalizedBoxIou: boxes2');
  return tf.tidy(() => {
    const [inter, union] = interUnion(boxes1, boxes2);
    const iou = tf.div(inter, union);
    const lti = tf.minimum(tf.expandDims(tf.slice(boxes1, [0, 0], [-1, 2]), 1), tf.expandDims(tf.slice(boxes2, [0, 0], [-1, 2]), 0));
    const rbi = tf.maximum(tf.expandDims(tf.slice(boxes1, [0, 2], [-1, 2]), 1), tf.expandDims(tf.slice(boxes2, [0, 2], [-1, 2]), 0));
    const [w, h] = tf.unstack(tf.relu(tf.sub(rbi, lti)), 2);
    const areai = tf.mul(w, h);
    return tf.sub(iou, tf.div(tf.sub(areai, union), areai)) as tf.Tensor2D;
  });
}

/** Clamp x to `[0, width]` and y to `[0, height]` (torchvision `clip_boxes_to_image`). */
export function clipBoxesToImage(boxes: tf.Tensor2D, size: ImageSize): tf.Tensor2D {
  checkBoxes(boxes, 'clipBoxesToImage: boxes');
  checkImageSize(size, 'clipBoxesToImage: size');
  const [h, w] = size;
  return tf.tidy(() => {
    const [x1, y1, x2, y2] = tf.unstack(boxes, 1);
    return tf.stack(
      [tf.clipByValue(x1, 0, w), tf.clipByValue(y1, 0, h), tf.clipByValue(x2, 0, w), tf.clipByValue(y2, 0, h)],
      1,
    ) as tf.Tensor2D;
  });
}

/** Indices (int32) of the boxes whose width and height are both `>= minSize` (torchvision `remove_small_boxes`). */
export function removeSmallBoxes(boxes: tf.Tensor2D, minSize: number): tf.Tensor1D {
  checkBoxes(boxes, 'removeSmallBoxes: boxes');
  return int32Tensor(smallBoxKeep(floatValues(boxes), minSize));
}

/** {@link removeSmallBoxes} on plain float32 values. */
export function smallBoxKeep(b: Float32Array, minSize: number): number[] {
  check(Number.isFinite(minSize), () => `removeSmallBoxes: minSize must be a number, got ${minSize}`);
  const keep: number[] = [];
  const m = f(minSize);
  for (let i = 0; i < b.length / 4; i++) {
    if (f(b[4 * i + 2] - b[4 * i]) >= m && f(b[4 * i + 3] - b[4 * i + 1]) >= m) keep.push(i);
  }
  return keep;
}
