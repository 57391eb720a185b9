import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { l2Normalize } from '../layers/l2Normalize.js';

function checkPair(name: string, a: tf.Tensor, b: tf.Tensor): void {
  check(a.rank === 3, () => `${name}: prediction must be [B, L, D], got shape [${a.shape.join(', ')}]`);
  check(
    a.shape.join(',') === b.shape.join(','),
    () => `${name}: prediction [${a.shape.join(', ')}] and target [${b.shape.join(', ')}] differ in shape`,
  );
}

/**
 * EVA's masked feature loss (Fang et al. 2023, sec. 2.1; official `compute_loss`): the negative cosine
 * similarity (`nn.CosineSimilarity`, each norm clamped at eps = 1e-8) between the student's prediction
 * and the teacher's features, averaged over the masked tokens only. `prediction`, `target` `[B, L, D]`;
 * `mask` `[B, L]` (or `[B, h, w]` with `h*w = L`), 1 = masked. Returns a scalar.
 */
export function evaLoss(prediction: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  checkPair('evaLoss', prediction, target);
  const [b, l] = prediction.shape;
  check(
    mask.shape[0] === b && mask.size === b * l,
    () => `evaLoss: expected a mask [${b}, ${l}] (1 = masked), got shape [${mask.shape.join(', ')}]`,
  );
  return tf.tidy(() => {
    const cos = tf.sum(tf.mul(l2Normalize(prediction, 1e-8), l2Normalize(target, 1e-8)), -1);
    const m = mask.toFloat().reshape([b, l]);
    return tf.neg(tf.div(tf.sum(tf.mul(cos, m)), tf.sum(m))) as tf.Scalar;
  });
}

/**
 * MILAN's feature reconstruction loss against CLIP features (Hou et al. 2022, sec. 3.3 eq. 2; official
 * `forward_loss` with `use_clip`): both sides are L2-normalised along D (no epsilon) and the loss is the
 * mean over ALL tokens (class token included, no mask) of `2 - 2 <pred, target>`. `[B, T, D]` each.
 */
export function milanLoss(prediction: tf.Tensor, target: tf.Tensor): tf.Scalar {
  checkPair('milanLoss', prediction, target);
  return tf.tidy(() => {
    const p = l2Normalize(prediction, 0);
    const t = l2Normalize(target, 0);
    return tf.mean(tf.sub(2, tf.mul(tf.sum(tf.mul(p, t), -1), 2))) as tf.Scalar;
  });
}
