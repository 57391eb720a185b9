import * as tf from '@tensorflow/tfjs';
import type { FCMAE } from '../pretrain/fcmae.js';
import type { MixMIM } from '../pretrain/mixmim.js';
import type { MixMIMMask } from '../pretrain/mixmimMask.js';
import { patchify, unpatchify } from '../pretrain/patchify.js';
import type { SimMIM } from '../pretrain/simmim.js';

/** A 0/1 patch mask `[B, h, w]` (or a batch-shared `[h, w]`) as a pixel mask `[B, H, W, 1]`. */
function pixelMask(mask: tf.Tensor, b: number, H: number, W: number): tf.Tensor4D {
  const m = mask.rank === 2 ? tf.tile(mask.toFloat().expandDims(0), [b, 1, 1]) : mask.toFloat();
  return tf.image.resizeNearestNeighbor(m.expandDims(-1) as tf.Tensor4D, [H, W]);
}

/** Undo the per-patch target normalisation (`norm_pix_loss`) with the statistics of the true patches. */
function denormalize(pred: tf.Tensor3D, x: tf.Tensor, p: number): tf.Tensor3D {
  const t = patchify(x, p);
  const n = t.shape[2];
  const mean = tf.mean(t, -1, true);
  const v = tf.div(tf.sum(tf.square(tf.sub(t, mean)), -1, true), n - 1);
  return tf.add(tf.mul(pred, tf.sqrt(tf.add(v, 1e-6))), mean) as tf.Tensor3D;
}

/**
 * What a masked-image model sees and what it rebuilds, in the normalised input space: `masked` (the
 * removed patches zeroed; for MixMIM the mixed image) and `reconstruction` (the visible pixels kept,
 * the model's prediction at the masked ones). Per-patch-normalised targets (FCMAE, MixMIM) are
 * mapped back with the true patches' mean and variance, as MAE's visualisation does. `null` for a
 * method that does not predict pixels (FastMIM predicts HOG features).
 */
export function maskedReconstruction(
  method: 'simmim' | 'mixmim' | 'fastmim' | 'fcmae',
  model: unknown,
  x: tf.Tensor4D,
  mask: tf.Tensor | MixMIMMask,
): { masked: tf.Tensor4D; reconstruction: tf.Tensor4D } | null {
  if (method === 'fastmim') return null;
  return tf.tidy(() => {
    const [b, H, W] = x.shape;
    if (method === 'simmim') {
      const m = model as SimMIM;
      const rec = m.forward(x, { mask: mask as tf.Tensor3D });
      const pm = pixelMask(mask as tf.Tensor, b, H, W);
      const keep = tf.sub(1, pm);
      return { masked: tf.mul(x, keep) as tf.Tensor4D, reconstruction: tf.add(tf.mul(x, keep), tf.mul(rec, pm)) as tf.Tensor4D };
    }
    if (method === 'fcmae') {
      const m = model as FCMAE;
      const p = m.stride;
      const [h, w] = [H / p, W / p];
      let pred = m.forward(x, { mask: mask as tf.Tensor3D }).reshape([b, h * w, -1]) as tf.Tensor3D;
      if (m.opts.normPixLoss) pred = denormalize(pred, x, p);
      const rec = unpatchify(pred, p, [h, w]);
      const pm = pixelMask(mask as tf.Tensor, b, H, W);
      const keep = tf.sub(1, pm);
      return { masked: tf.mul(x, keep) as tf.Tensor4D, reconstruction: tf.add(tf.mul(x, keep), tf.mul(rec, pm)) as tf.Tensor4D };
    }
    // MixMIM: image i is mixed with image B-1-i where the shared mask is 1; the first B outputs rebuild image i there
    const m = model as MixMIM;
    const mm = mask as MixMIMMask;
    const s = m.encoderStride;
    const [h, w] = [H / s, W / s];
    const out = m.forward(x, { mask: mm });
    let pred = tf.slice(out, [0, 0, 0], [b, h * w, out.shape[2]]) as tf.Tensor3D;
    if (m.opts.normPixLoss) pred = denormalize(pred, x, s);
    const rec = unpatchify(pred, s, [h, w]);
    const pm = pixelMask(mm.mask, b, H, W);
    const keep = tf.sub(1, pm);
    const partner = tf.reverse(x, 0);
    return {
      masked: tf.add(tf.mul(x, keep), tf.mul(partner, pm)) as tf.Tensor4D,
      reconstruction: tf.add(tf.mul(x, keep), tf.mul(rec, pm)) as tf.Tensor4D,
    };
  });
}
