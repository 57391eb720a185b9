import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { interpolateNhwc } from '../layers/interpolate.js';

/** Options of {@link pixelTextLoss}. */
export interface PixelTextLossOptions {
  /** Temperature the score map is divided by (default 0.07). */
  tau?: number;
  /** Weight of the auxiliary loss (DenseCLIP's identity head: 0.4). */
  lossWeight?: number;
  /** Label that contributes no loss (default 255). */
  ignoreIndex?: number;
  /**
   * Average over the non-ignored pixels (true) or over all pixels (false, default: mmseg's `CrossEntropyLoss`
   * with `avg_non_ignore=False`, as the official configs run it).
   */
  avgNonIgnore?: boolean;
}

/**
 * DenseCLIP's auxiliary pixel-text loss (Rao et al. 2022, sec. 3.2): the score map over `tau` is taken as
 * segmentation logits (the `IdentityHead`), resized bilinearly (align_corners=False) to the label size, and
 * scored by pixel-wise cross-entropy with `ignoreIndex`, times `lossWeight`. scoreMap NHWC `[B, h, w, K]`,
 * labels `[B, H, W]` class indices.
 */
export function pixelTextLoss(scoreMap: tf.Tensor, labels: tf.Tensor, opts: PixelTextLossOptions = {}): tf.Scalar {
  check(scoreMap.rank === 4, () => `pixelTextLoss: scoreMap must be NHWC [B, h, w, K], got shape [${scoreMap.shape.join(', ')}]`);
  check(
    labels.rank === 3 && labels.shape[0] === scoreMap.shape[0],
    () => `pixelTextLoss: labels must be [B, H, W] with B = ${scoreMap.shape[0]}, got [${labels.shape.join(', ')}]`,
  );
  const [b, h, w] = labels.shape as [number, number, number];
  const k = scoreMap.shape[3] as number;
  const ignore = opts.ignoreIndex ?? 255;
  const tau = opts.tau ?? 0.07;
  check(tau > 0, () => `pixelTextLoss: tau must be positive, got ${tau}`);
  const lab = labels.dataSync();
  for (let i = 0; i < lab.length; i++) {
    const l = lab[i];
    check(
      l === ignore || (Number.isInteger(l) && l >= 0 && l < k),
      () => `pixelTextLoss: label ${l} at flat index ${i} is outside [0, ${k}) and is not the ignore index ${ignore}`,
    );
  }
  return tf.tidy(() => {
    const logits = interpolateNhwc(tf.div(scoreMap, tau), [h, w], { mode: 'bilinear' }).reshape([b * h * w, k]);
    const li = labels.toInt().reshape([b * h * w]);
    const valid = tf.notEqual(li, ignore);
    const safe = tf.where(valid, li, tf.zerosLike(li));
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(safe, k)), 1));
    const vf = valid.toFloat();
    const total = tf.sum(tf.mul(nll, vf));
    const denom = opts.avgNonIgnore ? tf.maximum(tf.sum(vf), 1) : tf.scalar(b * h * w);
    return tf.mul(tf.div(total, denom), opts.lossWeight ?? 0.4) as tf.Scalar;
  });
}
