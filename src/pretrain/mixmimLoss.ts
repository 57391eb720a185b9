import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt } from './maskUtils.js';
import { normalizePatches, patchify } from './patchify.js';

/** Options of {@link mixmimLoss}. */
export interface MixMIMLossOptions {
  /** Patch size of the reconstruction (the encoder stride, 32 in MixMIM). */
  patchSize: number;
  /** Normalise each target patch by its mean and unbiased variance (default true, as the official script). */
  normPixLoss?: boolean;
}

/**
 * MixMIM's dual reconstruction loss (Liu et al. 2023, sec. 3.2; official `MixMIM.forward_loss`).
 * Image `i` was mixed with image `B-1-i` by ONE batch-shared token mask (1 = token from the partner).
 * `reconstruction` `[2B, L, p*p*C]`: the first B rows predict the images whose tokens were replaced where
 * mask = 1, the last B their partners where mask = 0; they are unmixed as
 * `rec[:B] * mask + flip(rec[B:]) * (1 - mask)` and compared with `patchify(images)` (per-patch
 * normalised with the unbiased variance + 1e-6 if `normPixLoss`) by the MSE over ALL tokens.
 * `images` NHWC `[B, H, W, C]` with B even; `mask` `[H/p, W/p]`. Returns a scalar.
 */
export function mixmimLoss(images: tf.Tensor, reconstruction: tf.Tensor, mask: tf.Tensor, opts: MixMIMLossOptions): tf.Scalar {
  const p = opts.patchSize;
  checkPositiveInt('patchSize', p);
  check(images.rank === 4, () => `mixmimLoss: images must be NHWC [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  const [b, H, W, c] = images.shape;
  check(b % 2 === 0, () => `mixmimLoss: the batch must be even (image i is mixed with image B-1-i), got B = ${b}`);
  check(H % p === 0 && W % p === 0, () => `mixmimLoss: image size ${H}x${W} is not divisible by patchSize ${p}`);
  const h = H / p;
  const w = W / p;
  const l = h * w;
  check(
    mask.rank === 2 && mask.shape[0] === h && mask.shape[1] === w,
    () => `mixmimLoss: expected a batch-shared mask [${h}, ${w}], got shape [${mask.shape.join(', ')}]`,
  );
  check(
    reconstruction.rank === 3 &&
      reconstruction.shape[0] === 2 * b &&
      reconstruction.shape[1] === l &&
      reconstruction.shape[2] === p * p * c,
    () =>
      `mixmimLoss: expected a reconstruction [${2 * b}, ${l}, ${p * p * c}] (2B sequences of L tokens of p*p*C), got shape [${reconstruction.shape.join(', ')}]`,
  );
  return tf.tidy(() => {
    let target: tf.Tensor = patchify(images, p);
    if (opts.normPixLoss ?? true) target = normalizePatches(target);
    const m = mask.toFloat().reshape([1, l, 1]);
    const x1 = tf.slice(reconstruction, [0, 0, 0], [b, l, p * p * c]);
    const x2 = flipBatch(tf.slice(reconstruction, [b, 0, 0], [b, l, p * p * c]));
    const unmix = tf.add(tf.mul(x1, m), tf.mul(x2, tf.sub(1, m)));
    // mean per token first, then over tokens: the same value with a shorter float32 summation chain
    return tf.mean(tf.mean(tf.squaredDifference(unmix, target), -1)) as tf.Scalar;
  });
}

/**
 * MixMIM's mixing (sec. 3.1): `x * (1 - m) + flip(x) * m` with `m` broadcast over the batch, for patch
 * embeddings `[B, h, w, C]` with a `[h, w]` mask, or (as a pixel view) images with the mask upsampled
 * to pixels.
 */
export function mixWithPartner(x: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  check(x.rank === 4, () => `mixWithPartner expects [B, h, w, C], got shape [${x.shape.join(', ')}]`);
  check(
    mask.rank === 2 && mask.shape[0] === x.shape[1] && mask.shape[1] === x.shape[2],
    () => `mixWithPartner: expected a mask [${x.shape[1]}, ${x.shape[2]}], got shape [${mask.shape.join(', ')}]`,
  );
  return tf.tidy(() => {
    const [, h, w] = x.shape as number[];
    const m = mask.toFloat().reshape([1, h, w, 1]);
    return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(flipBatch(x), m));
  });
}

/**
 * `x.flip(0)`: the batch in reverse order, computed as a permutation-matrix product (exact for finite
 * values) because tfjs-cpu's `reverse` and its gradient walk the tensor element by element.
 */
export function flipBatch(x: tf.Tensor): tf.Tensor {
  const b = x.shape[0];
  return tf.tidy(() => {
    const perm = tf.reverse(tf.eye(b), 0) as tf.Tensor2D;
    return tf.matMul(perm, x.reshape([b, -1]) as tf.Tensor2D).reshape(x.shape);
  });
}
