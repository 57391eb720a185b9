import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, repeatMask } from './maskUtils.js';

/** Options of {@link simmimLoss}. */
export interface SimMIMLossOptions {
  /** The model's patch size: one mask cell covers `patchSize x patchSize` pixels. */
  patchSize: number;
}

/**
 * SimMIM's masked L1 loss (Xie et al. 2022, sec. 3.3 eq. 1; official `SimMIM.forward`): the patch mask
 * is upsampled to pixels, and `sum(|x - x_rec| * mask) / (sum(mask) + 1e-5) / C`, where `sum(mask)`
 * counts every masked pixel once (not once per channel). `images`, `reconstruction` NHWC `[B, H, W, C]`;
 * `mask` `[B, H/patchSize, W/patchSize]`, 1 = masked. Returns a scalar.
 */
export function simmimLoss(images: tf.Tensor, reconstruction: tf.Tensor, mask: tf.Tensor, opts: SimMIMLossOptions): tf.Scalar {
  const p = opts.patchSize;
  checkPositiveInt('patchSize', p);
  check(images.rank === 4, () => `simmimLoss: images must be NHWC [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  check(
    reconstruction.shape.join(',') === images.shape.join(','),
    () => `simmimLoss: reconstruction shape [${reconstruction.shape.join(', ')}] differs from the images' [${images.shape.join(', ')}]`,
  );
  const [b, H, W, c] = images.shape;
  check(H % p === 0 && W % p === 0, () => `simmimLoss: image size ${H}x${W} is not divisible by patchSize ${p}`);
  check(
    mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === H / p && mask.shape[2] === W / p,
    () => `simmimLoss: expected a mask [${b}, ${H / p}, ${W / p}] (image ${H}x${W} / patchSize ${p}), got shape [${mask.shape.join(', ')}]`,
  );
  return tf.tidy(() => {
    const m = repeatMask(mask.toFloat() as tf.Tensor3D, p).reshape([b, H, W, 1]);
    const l1 = tf.abs(tf.sub(images, reconstruction));
    return tf.div(tf.div(tf.sum(tf.mul(l1, m)), tf.add(tf.sum(m), 1e-5)), c) as tf.Scalar;
  });
}
