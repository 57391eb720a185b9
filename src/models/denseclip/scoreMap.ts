import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { l2Normalize } from '../../layers/attention.js';

/**
 * DenseCLIP's pixel-text score map (Rao et al. 2022, sec. 3.2, eq. 3): the cosine similarity of every pixel
 * embedding with every class embedding, `<visual / ||visual||, text / ||text||>` over the channels
 * (`F.normalize`, eps 1e-12), divided by `tau` when given. visual NHWC `[B, H, W, C]`, text `[B, K, C]`
 * -> NHWC `[B, H, W, K]`.
 */
export function pixelTextScoreMap(visual: tf.Tensor, text: tf.Tensor, opts: { tau?: number } = {}): tf.Tensor4D {
  check(visual.rank === 4, () => `pixelTextScoreMap: visual must be NHWC [B, H, W, C], got shape [${visual.shape.join(', ')}]`);
  check(text.rank === 3, () => `pixelTextScoreMap: text must be [B, K, C], got shape [${text.shape.join(', ')}]`);
  const [b, h, w, c] = visual.shape as [number, number, number, number];
  check(
    text.shape[0] === b && text.shape[2] === c,
    () => `pixelTextScoreMap: text [${text.shape.join(', ')}] does not match visual [B, C] = [${b}, ${c}]`,
  );
  if (opts.tau !== undefined) check(opts.tau > 0, () => `pixelTextScoreMap: tau must be positive, got ${opts.tau}`);
  const k = text.shape[1] as number;
  return tf.tidy(() => {
    const v = l2Normalize(visual.reshape([b, h * w, c])) as tf.Tensor3D;
    const t = l2Normalize(text) as tf.Tensor3D;
    let s: tf.Tensor = tf.matMul(v, t, false, true);
    if (opts.tau !== undefined) s = tf.div(s, opts.tau);
    return s.reshape([b, h, w, k]) as tf.Tensor4D;
  });
}
