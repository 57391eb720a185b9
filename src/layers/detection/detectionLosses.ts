import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';

/** How a per-element loss is reduced. */
export type LossReduction = 'none' | 'sum' | 'mean';

function reduce(loss: tf.Tensor, reduction: LossReduction, what: string): tf.Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return tf.sum(loss);
  check(reduction === 'mean', () => `${what}: reduction must be 'none', 'sum' or 'mean', got '${reduction}'`);
  return loss.size === 0 ? tf.scalar(0) : tf.mean(loss);
}

/**
 * `BCEWithLogits(x, t)` elementwise, in the numerically stable form `max(x, 0) - x t + log(1 + exp(-|x|))`.
 */
export function binaryCrossEntropyWithLogits(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
}

/** Options of {@link sigmoidFocalLoss}. */
export interface FocalLossOptions {
  /** Weight of the positives (negatives get `1 - alpha`); `< 0` disables the weighting. Default 0.25. */
  alpha?: number;
  /** Focusing exponent. Default 2. */
  gamma?: number;
  reduction?: LossReduction;
}

/**
 * Focal loss (Lin et al. 2017, eq. 5) on logits with 0/1 targets (torchvision `sigmoid_focal_loss`):
 * `ce (1 - p_t)^gamma alpha_t`.
 */
export function sigmoidFocalLoss(logits: tf.Tensor, targets: tf.Tensor, opts: FocalLossOptions = {}): tf.Tensor {
  check(
    logits.shape.join(',') === targets.shape.join(','),
    () => `sigmoidFocalLoss: logits [${logits.shape.join(', ')}] and targets [${targets.shape.join(', ')}] differ in shape`,
  );
  const alpha = opts.alpha ?? 0.25;
  const gamma = opts.gamma ?? 2;
  return tf.tidy(() => {
    const t = targets.toFloat();
    const p = tf.sigmoid(logits);
    const ce = binaryCrossEntropyWithLogits(logits, t);
    const pt = tf.add(tf.mul(p, t), tf.mul(tf.sub(1, p), tf.sub(1, t)));
    const q = tf.sub(1, pt);
    const mod = gamma === 2 ? tf.square(q) : gamma === 1 ? q : gamma === 0 ? tf.onesLike(q) : tf.pow(tf.relu(q), gamma);
    let loss = tf.mul(ce, mod);
    if (alpha >= 0) loss = tf.mul(tf.add(tf.mul(alpha, t), tf.mul(1 - alpha, tf.sub(1, t))), loss);
    return reduce(loss, opts.reduction ?? 'none', 'sigmoidFocalLoss');
  });
}

/** Options of {@link generalizedBoxIouLoss}. */
export interface GiouLossOptions {
  reduction?: LossReduction;
  /** Added to the union and the enclosing area. Default 1e-7. */
  eps?: number;
}

/**
 * `1 - GIoU` of matching box pairs `[N, 4]` (Rezatofighi et al. 2019; torchvision
 * `generalized_box_iou_loss`). Differentiable in both box sets.
 */
export function generalizedBoxIouLoss(boxes1: tf.Tensor, boxes2: tf.Tensor, opts: GiouLossOptions = {}): tf.Tensor {
  check(
    boxes1.shape.join(',') === boxes2.shape.join(',') && boxes1.shape[boxes1.rank - 1] === 4,
    () =>
      `generalizedBoxIouLoss: boxes must both be [..., 4] of one shape, got [${boxes1.shape.join(', ')}] and [${boxes2.shape.join(', ')}]`,
  );
  const eps = opts.eps ?? 1e-7;
  return tf.tidy(() => {
    const ax = boxes1.rank - 1;
    const [x1, y1, x2, y2] = tf.unstack(boxes1, ax);
    const [x1g, y1g, x2g, y2g] = tf.unstack(boxes2, ax);
    const xk1 = tf.maximum(x1, x1g);
    const yk1 = tf.maximum(y1, y1g);
    const xk2 = tf.minimum(x2, x2g);
    const yk2 = tf.minimum(y2, y2g);
    // (xk2 - xk1)(yk2 - yk1) where both are positive, else 0
    const inter = tf.mul(tf.relu(tf.sub(xk2, xk1)), tf.relu(tf.sub(yk2, yk1)));
    const union = tf.sub(tf.add(tf.mul(tf.sub(x2, x1), tf.sub(y2, y1)), tf.mul(tf.sub(x2g, x1g), tf.sub(y2g, y1g))), inter);
    const iou = tf.div(inter, tf.add(union, eps));
    const xc1 = tf.minimum(x1, x1g);
    const yc1 = tf.minimum(y1, y1g);
    const xc2 = tf.maximum(x2, x2g);
    const yc2 = tf.maximum(y2, y2g);
    const areaC = tf.mul(tf.sub(xc2, xc1), tf.sub(yc2, yc1));
    const miou = tf.sub(iou, tf.div(tf.sub(areaC, union), tf.add(areaC, eps)));
    return reduce(tf.sub(1, miou), opts.reduction ?? 'none', 'generalizedBoxIouLoss');
  });
}

/** Smooth L1 (Huber / beta) elementwise (torch `F.smooth_l1_loss(reduction='none')`); beta 0 is L1. */
export function smoothL1(input: tf.Tensor, target: tf.Tensor, beta = 1): tf.Tensor {
  return tf.tidy(() => {
    const n = tf.abs(tf.sub(input, target));
    if (beta <= 0) return n;
    // 0.5 n^2 / beta below beta, n - 0.5 beta above (as one differentiable expression)
    const q = tf.minimum(n, beta);
    return tf.add(tf.div(tf.mul(0.5, tf.square(q)), beta), tf.sub(n, q));
  });
}
