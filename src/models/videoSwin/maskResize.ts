import * as tf from '@tensorflow/tfjs';

/**
 * PyTorch's legacy `nearest` source index (`upsample_nearest*d`): `min(floor(o * (in / out)), in - 1)`
 * with the scale and product in float32, identity when the sizes agree.
 */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const idx = new Int32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let o = 0; o < outSize; o++) idx[o] = inSize === outSize ? o : Math.min(Math.floor(Math.fround(o * scale)), inSize - 1);
  return idx;
}

/**
 * `F.interpolate(mask, size, mode='nearest')` over the trailing axes of a 0/1 mask (`[B, ...grid]`), as
 * float32. Not differentiable (masks are constants).
 */
export function resizeMaskNearest(mask: tf.Tensor, size: number[]): tf.Tensor {
  return tf.tidy(() => {
    let m = mask.dtype === 'float32' ? mask : mask.toFloat();
    size.forEach((s, i) => {
      const axis = i + 1;
      const n = m.shape[axis];
      if (n !== s) m = tf.gather(m, tf.tensor1d(nearestIndices(n, s), 'int32'), axis);
    });
    return m === mask ? mask.clone() : m;
  });
}
