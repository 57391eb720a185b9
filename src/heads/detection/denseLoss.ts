import * as tf from '@tensorflow/tfjs';
import { boxIou } from '../../layers/detection/boxes.js';
import { BoxCoder } from '../../layers/detection/boxCoder.js';
import { generalizedBoxIouLoss, smoothL1 } from '../../layers/detection/detectionLosses.js';
import { Matcher } from '../../layers/detection/matcher.js';
import { floatValues } from '../../layers/detection/util.js';
import { DetTarget } from './common.js';

/** Matched gt index per anchor for each image (all -1 for an image without boxes). */
export function matchAnchorValues(m: Matcher, anchors: tf.Tensor2D, targets: DetTarget[]): Int32Array[] {
  return targets.map((t) => {
    if (t.boxes.shape[0] === 0) return new Int32Array(anchors.shape[0]).fill(-1);
    const q = tf.tidy(() => boxIou(t.boxes, anchors));
    const v = floatValues(q);
    q.dispose();
    return m.matchValues(v, t.boxes.shape[0], anchors.shape[0]);
  });
}

/** Indices where `pred(v)` holds. */
export function where(values: Int32Array, pred: (v: number) => boolean): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) if (pred(values[i])) out.push(i);
  return Int32Array.from(out);
}

/** Rows `idx` of a 2-D tensor. */
export function rows(t: tf.Tensor2D, idx: ArrayLike<number>): tf.Tensor2D {
  return tf.gather(t, tf.tensor1d(Int32Array.from(idx), 'int32')) as tf.Tensor2D;
}

/** Box regression losses of the RetinaNet recipes (torchvision `det_utils._box_loss`), summed. */
export type BoxLossType = 'l1' | 'smooth_l1' | 'giou';

/** `_box_loss(type, ...)` summed over the rows: deltas vs encoded targets (l1 / smooth_l1, beta 1) or GIoU of decoded boxes. */
export function boxLoss(type: BoxLossType, coder: BoxCoder, anchors: tf.Tensor2D, gt: tf.Tensor2D, pred: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    if (type === 'giou') return tf.sum(generalizedBoxIouLoss(coder.decode(pred, anchors), gt)) as tf.Scalar;
    const target = coder.encode(gt, anchors);
    return tf.sum(type === 'l1' ? tf.abs(tf.sub(pred, target)) : smoothL1(pred, target, 1)) as tf.Scalar;
  });
}
