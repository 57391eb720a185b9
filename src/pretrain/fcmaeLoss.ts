import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt } from './maskUtils.js';
import { normalizePatches, patchify } from './patchify.js';

/** Options of {@link fcmaeLoss}. */
export interface FCMAELossOptions {
  /** Patch size of the prediction (32 in FCMAE). */
  patchSize: number;
  /** Normalise each target patch by its mean and unbiased variance (default true, as the official script). */
  normPixLoss?: boolean;
}

/**
 * The mean over masked tokens of a per-token mean squared error: `sum_L(mean_D((pred - target)^2) * mask) / sum(mask)`
 * for `pred`, `target` `[B, L, D]` and `mask` `[B, L]` (MAE's `forward_loss`, He et al. 2022, sec. 3).
 */
export function maskedTokenMse(pred: tf.Tensor, target: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const perToken = tf.mean(tf.squaredDifference(pred, target), -1);
    const m = mask.toFloat().reshape(perToken.shape);
    return tf.div(tf.sum(tf.mul(perToken, m)), tf.sum(m)) as tf.Scalar;
  });
}

/**
 * FCMAE's loss (ConvNeXt V2, Woo et al. 2023, sec. 3 "decoder / reconstruction target"; official
 * `FCMAE.forward_loss`): target `patchify(images)` (per-patch normalised with the unbiased variance + 1e-6
 * if `normPixLoss`), MSE per patch averaged over the masked patches. `images` NHWC `[B, H, W, C]`,
 * `prediction` `[B, L, p*p*C]` (or the decoder's NHWC map `[B, H/p, W/p, p*p*C]`), `mask` `[B, H/p, W/p]`
 * (1 = removed). Returns a scalar.
 */
export function fcmaeLoss(images: tf.Tensor, prediction: tf.Tensor, mask: tf.Tensor, opts: FCMAELossOptions): tf.Scalar {
  const p = opts.patchSize;
  checkPositiveInt('patchSize', p);
  check(images.rank === 4, () => `fcmaeLoss: images must be NHWC [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  const [b, H, W, c] = images.shape;
  check(H % p === 0 && W % p === 0, () => `fcmaeLoss: image size ${H}x${W} is not divisible by patchSize ${p}`);
  const h = H / p;
  const w = W / p;
  const d = p * p * c;
  check(
    (prediction.rank === 3 && prediction.shape[0] === b && prediction.shape[1] === h * w && prediction.shape[2] === d) ||
      (prediction.rank === 4 &&
        prediction.shape[0] === b &&
        prediction.shape[1] === h &&
        prediction.shape[2] === w &&
        prediction.shape[3] === d),
    () =>
      `fcmaeLoss: expected a prediction [${b}, ${h * w}, ${d}] (or NHWC [${b}, ${h}, ${w}, ${d}]), got shape [${prediction.shape.join(', ')}]`,
  );
  check(
    mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === h && mask.shape[2] === w,
    () => `fcmaeLoss: expected a mask [${b}, ${h}, ${w}], got shape [${mask.shape.join(', ')}]`,
  );
  return tf.tidy(() => {
    let target: tf.Tensor = patchify(images, p);
    if (opts.normPixLoss ?? true) target = normalizePatches(target);
    return maskedTokenMse(prediction.reshape([b, h * w, d]), target, mask.reshape([b, h * w]));
  });
}
