import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** Options of {@link pixelCrossEntropy}. */
export interface PixelCrossEntropyOptions {
  /** Label value that contributes no loss (default 255, the ADE20K / mmseg convention). */
  ignoreIndex?: number;
  /** 'mean' (default), 'sum' or 'none' (per-pixel `[B, H, W]`, 0 at ignored pixels). */
  reduction?: 'mean' | 'sum' | 'none';
  /**
   * 'mean' divides by the number of non-ignored pixels (default true: PyTorch's `F.cross_entropy`);
   * false divides by all pixels (mmseg's `CrossEntropyLoss` default `avg_non_ignore=False`).
   */
  avgNonIgnore?: boolean;
  /** Check that every label is in `[0, numClasses)` or the ignore index (reads the labels; default true). */
  validate?: boolean;
}

/**
 * Pixel-wise softmax cross-entropy for semantic segmentation (PyTorch's `F.cross_entropy` on NCHW logits
 * with `ignore_index`): `-log softmax(logits)[label]` per pixel, ignored pixels excluded. With every pixel
 * ignored the 'mean' is 0/0 = NaN, as in PyTorch. `logits` NHWC `[B, H, W, K]`, `labels` `[B, H, W]`
 * (int32 class indices, same spatial size: resize the logits first, e.g. with `interpolateNhwc(logits, size, { mode: 'bilinear' })`).
 */
export function pixelCrossEntropy(logits: tf.Tensor, labels: tf.Tensor, opts: PixelCrossEntropyOptions = {}): tf.Tensor {
  check(logits.rank === 4, () => `pixelCrossEntropy: logits must be NHWC [B, H, W, numClasses], got shape [${logits.shape.join(', ')}]`);
  check(labels.rank === 3, () => `pixelCrossEntropy: labels must be [B, H, W] class indices, got shape [${labels.shape.join(', ')}]`);
  const [b, h, w, k] = logits.shape;
  check(
    labels.shape[0] === b && labels.shape[1] === h && labels.shape[2] === w,
    () =>
      `pixelCrossEntropy: labels [${labels.shape.join(', ')}] do not match the logits' [B, H, W] = [${b}, ${h}, ${w}]; resize the logits to the label size first`,
  );
  const ignore = opts.ignoreIndex ?? 255;
  if (opts.validate ?? true) {
    const v = labels.dataSync();
    for (let i = 0; i < v.length; i++) {
      const l = v[i];
      check(
        l === ignore || (Number.isInteger(l) && l >= 0 && l < k),
        () => `pixelCrossEntropy: label ${l} at flat index ${i} is outside [0, ${k}) and is not the ignore index ${ignore}`,
      );
    }
  }
  return tf.tidy(() => {
    const lab = labels.toInt();
    const valid = tf.notEqual(lab, ignore);
    const safe = tf.where(valid, lab, tf.zerosLike(lab));
    const logp = tf.logSoftmax(logits.reshape([b * h * w, k]));
    const oh = tf.oneHot(safe.reshape([b * h * w]), k);
    const validF = valid.toFloat();
    const nll = tf
      .neg(tf.sum(tf.mul(logp, oh), 1))
      .reshape([b, h, w])
      .mul(validF);
    const reduction = opts.reduction ?? 'mean';
    if (reduction === 'none') return nll;
    const total = tf.sum(nll);
    if (reduction === 'sum') return total;
    return tf.div(total, (opts.avgNonIgnore ?? true) ? tf.sum(validF) : tf.scalar(b * h * w));
  });
}
