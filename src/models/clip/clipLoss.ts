import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';

/** Mean cross-entropy of logits `[N, N]` against the targets `0..N-1` (the matching pairs on the diagonal). */
function diagonalCrossEntropy(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.eye(logits.shape[0])), 1))) as tf.Scalar);
}

/**
 * The symmetric contrastive (InfoNCE) loss of CLIP (Radford et al. 2021, fig. 3; open_clip's `ClipLoss`, world size
 * 1): `(CE(s I T^T + b, arange) + CE(s T I^T + b, arange)) / 2` for already normalised features `[N, D]`, scale
 * `s` (`exp(logit_scale)`) and an optional bias `b`.
 */
export function clipLoss(
  imageFeatures: tf.Tensor,
  textFeatures: tf.Tensor,
  logitScale: tf.Tensor | number,
  logitBias?: tf.Tensor | number,
): tf.Scalar {
  check(
    imageFeatures.rank === 2 && textFeatures.rank === 2 && imageFeatures.shape.join() === textFeatures.shape.join(),
    () => `clipLoss expects image and text features of one shape [N, D], got [${imageFeatures.shape}] and [${textFeatures.shape}]`,
  );
  return tf.tidy(() => {
    let perImage: tf.Tensor = tf.mul(tf.matMul(imageFeatures, textFeatures, false, true), logitScale);
    if (logitBias !== undefined) perImage = tf.add(perImage, logitBias);
    const perText = tf.transpose(perImage);
    return tf.div(tf.add(diagonalCrossEntropy(perImage as tf.Tensor2D), diagonalCrossEntropy(perText as tf.Tensor2D)), 2) as tf.Scalar;
  });
}
