import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import type { RgbImage } from './imageGrid.js';

/**
 * The top `k` principal directions of the rows of `x` (`[n, d]`): eigenvectors of the sample
 * covariance, by power iteration with deflation. Returns unit vectors (sign fixed so the largest
 * component is positive) and their variances, largest first.
 */
export function principalComponents(x: tf.Tensor2D, k: number, iters = 200): { components: Float64Array[]; variances: number[] } {
  const [n, d] = x.shape;
  check(n >= 2 && k >= 1 && k <= d, () => `principalComponents: need >= 2 rows and 1 <= k <= ${d}, got ${n} rows, k = ${k}`);
  const cov = tf.tidy(() => {
    const c = tf.sub(x, tf.mean(x, 0, true));
    return tf.div(tf.matMul(c, c, true, false), n - 1).dataSync();
  });
  const a = Float64Array.from(cov);
  const components: Float64Array[] = [];
  const variances: number[] = [];
  for (let c = 0; c < k; c++) {
    let v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = 1 + ((i * 7919) % 13) / 13; // deterministic start
    let lambda = 0;
    for (let it = 0; it < iters; it++) {
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        let s = 0;
        const row = i * d;
        for (let j = 0; j < d; j++) s += a[row + j] * v[j];
        w[i] = s;
      }
      let norm = 0;
      for (let i = 0; i < d; i++) norm += w[i] * w[i];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      for (let i = 0; i < d; i++) w[i] /= norm;
      lambda = norm;
      v = w;
    }
    let big = 0;
    for (let i = 0; i < d; i++) if (Math.abs(v[i]) > Math.abs(v[big])) big = i;
    if (v[big] < 0) for (let i = 0; i < d; i++) v[i] = -v[i];
    components.push(v);
    variances.push(lambda);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) a[i * d + j] -= lambda * v[i] * v[j];
  }
  return { components, variances };
}

/**
 * Show a feature map as colour: project every position's `C`-vector of an NHWC map (`[1, H, W, C]`
 * or `[H, W, C]`) on the map's first three principal components and scale each to [0, 1] (between
 * its 1st and 99th percentiles). A common way to look at what a backbone's stage encodes.
 */
export function pcaToRgb(map: tf.Tensor): RgbImage {
  check(
    (map.rank === 4 && map.shape[0] === 1) || map.rank === 3,
    () => `pcaToRgb expects [1, H, W, C] or [H, W, C], got [${map.shape.join(', ')}]`,
  );
  const [h, w, c] = map.shape.slice(-3);
  const x = map.reshape([h * w, c]) as tf.Tensor2D;
  const k = Math.min(3, c);
  const { components } = principalComponents(x, k);
  const proj = tf.tidy(() => {
    const centred = tf.sub(x, tf.mean(x, 0, true));
    const basis = tf.tensor2d(
      components.flatMap((v) => Array.from(v)),
      [k, c],
    );
    return tf.matMul(centred, basis, false, true).dataSync();
  });
  x.dispose();
  const data = new Float32Array(h * w * 3);
  for (let j = 0; j < k; j++) {
    const col = Array.from({ length: h * w }, (_, i) => proj[i * k + j]).sort((a, b) => a - b);
    const lo = col[Math.floor(0.01 * (col.length - 1))];
    const hi = col[Math.ceil(0.99 * (col.length - 1))];
    const span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < h * w; i++) data[i * 3 + j] = Math.min(1, Math.max(0, (proj[i * k + j] - lo) / span));
  }
  return { width: w, height: h, data };
}
