import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { clipLoss } from './clipLoss.js';

/** Options of {@link cocaLoss} (open_clip's `CoCaLoss` arguments). */
export interface CocaLossOptions {
  /** Default 2. */
  captionLossWeight?: number;
  /** Default 1. */
  clipLossWeight?: number;
  /** Targets with this id are ignored. Default 0. */
  padId?: number;
}

/**
 * CoCa's objective (Yu et al. 2022, sec. 3.1 eq. 4; open_clip's `CoCaLoss` with `CoCaTask`'s shift):
 * `clipLossWeight * clipLoss(I, T, s)` plus `captionLossWeight *` the next-token cross-entropy of `logits[:, :-1]`
 * against `text[:, 1:]`, averaged over the targets that are not `padId`.
 */
export function cocaLoss(
  outputs: { imageFeatures: tf.Tensor; textFeatures: tf.Tensor; logits: tf.Tensor; logitScale: tf.Tensor; logitBias?: tf.Tensor },
  text: tf.Tensor,
  opts: CocaLossOptions = {},
): { contrastiveLoss: tf.Scalar; captionLoss: tf.Scalar; loss: tf.Scalar } {
  const { logits } = outputs;
  check(
    text.rank === 2 && text.dtype === 'int32',
    () => `text must be int32 token ids [B, L], got ${text.dtype} [${text.shape.join(', ')}]`,
  );
  check(
    logits.rank === 3 && logits.shape[0] === text.shape[0] && logits.shape[1] === text.shape[1],
    () =>
      `logits must be [${text.shape[0]}, ${text.shape[1]}, vocab] for text [${text.shape.join(', ')}], got [${logits.shape.join(', ')}]`,
  );
  check((text.shape[1] as number) >= 2, () => `captions need at least 2 tokens for a next-token target, got length ${text.shape[1]}`);
  const capW = opts.captionLossWeight ?? 2;
  const clipW = opts.clipLossWeight ?? 1;
  const pad = opts.padId ?? 0;
  const res = tf.tidy(() => {
    const [b, l, v] = logits.shape;
    const contrastive = clipW
      ? tf.mul(clipLoss(outputs.imageFeatures, outputs.textFeatures, outputs.logitScale, outputs.logitBias), clipW)
      : tf.scalar(0);
    const lg = tf.slice(logits, [0, 0, 0], [b, l - 1, v]).reshape([b * (l - 1), v]);
    const labels = tf.slice(text, [0, 1], [b, l - 1]).reshape([b * (l - 1)]);
    const keep = tf.cast(tf.notEqual(labels, pad), 'float32');
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(lg), tf.oneHot(labels, v)), 1));
    const caption = tf.mul(tf.div(tf.sum(tf.mul(nll, keep)), tf.sum(keep)), capW);
    return [contrastive.reshape([]), caption.reshape([]), tf.add(contrastive, caption).reshape([])];
  });
  return { contrastiveLoss: res[0] as tf.Scalar, captionLoss: res[1] as tf.Scalar, loss: res[2] as tf.Scalar };
}
