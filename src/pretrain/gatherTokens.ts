import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * Per-sample token gather `torch.gather(x, 1, ids[..., None].expand(-1, -1, C))`: `x` `[B, N, C]`,
 * `ids` int32 `[B, K]` -> `[B, K, C]`. Written as one flat gather (its gradient is a segment sum, which
 * every backend has), as MAE / MILAN use to keep, drop and restore tokens.
 */
export function gatherTokens(x: tf.Tensor, ids: tf.Tensor): tf.Tensor3D {
  check(
    x.rank === 3 && ids.rank === 2 && ids.shape[0] === x.shape[0],
    () => `gatherTokens expects x [B, N, C] and ids [B, K], got [${x.shape.join(', ')}] and [${ids.shape.join(', ')}]`,
  );
  const [b, n, c] = x.shape as number[];
  const k = ids.shape[1] as number;
  return tf.tidy(() => {
    const offsets = tf.mul(tf.range(0, b, 1, 'int32'), tf.scalar(n, 'int32')).reshape([b, 1]);
    const flat = tf.add(ids.toInt(), offsets).reshape([b * k]);
    return tf.gather(x.reshape([b * n, c]), flat).reshape([b, k, c]) as tf.Tensor3D;
  });
}
