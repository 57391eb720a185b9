import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { l2Normalize } from '../layers/l2Normalize.js';
import { hypot, stopGradient } from './gradientSafe.js';
import { checkPositiveInt } from './maskUtils.js';

/** Options of {@link hogTargets} (FastMIM's `HOGLayerC` arguments, camelCase). */
export interface HOGOptions {
  /** Orientation bins over the full circle (default 9). */
  nbins?: number;
  /** Cell size in pixels; cells do not overlap (default 8). */
  pool?: number;
  /** Side of a Gaussian window that weights the magnitudes, tiled over the image (0 = none, default). */
  gaussianWindow?: number;
  /** L2-normalise each cell's histogram per colour channel (`norm_pix_loss`, default true). */
  normalize?: boolean;
}

/** `get_gkern(k, k // 2)`: a normalised 2-D Gaussian window `[k, k]`. */
function gaussianKernel(k: number): Float32Array {
  const std = Math.floor(k / 2);
  const mean = (k - 1) / 2;
  const g = Array.from({ length: k }, (_, i) => Math.exp(-0.5 * ((i - mean) / std) ** 2));
  const out = new Float32Array(k * k);
  let s = 0;
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) s += out[i * k + j] = g[i] * g[j];
  for (let i = 0; i < k * k; i++) out[i] /= s;
  return out;
}

/**
 * Histograms of oriented gradients as a masked-image-modeling target (MaskFeat, Wei et al. 2022,
 * sec. 3.2; FastMIM, Guo et al. 2022, sec. 3.2; the official `HOGLayerC`). Per colour channel of the
 * NHWC image: reflect-pad 1, Sobel cross-correlation `gx` (kernel `[[1,0,-1],[2,0,-2],[1,0,-1]]`) and
 * `gy` (its transpose), magnitude `sqrt(gx^2 + gy^2)`, phase `atan2(gx, gy) / pi * nbins` binned by
 * `floor(phase) mod nbins`; magnitudes are summed per bin over non-overlapping `pool x pool` cells
 * (one-hot sums, no scatter, so it runs and differentiates on every backend) and, if `normalize`,
 * L2-normalised over the bins (eps 1e-12). Returns `[B, H/pool, W/pool, C*nbins]`, channel index
 * `colour * nbins + bin`. Gradients flow through the magnitudes (bins are piecewise constant).
 */
export function hogTargets(images: tf.Tensor, opts: HOGOptions = {}): tf.Tensor4D {
  const nbins = opts.nbins ?? 9;
  const pool = opts.pool ?? 8;
  const gw = opts.gaussianWindow ?? 0;
  const normalize = opts.normalize ?? true;
  checkPositiveInt('nbins', nbins);
  check(nbins >= 2, () => `nbins must be at least 2, got ${nbins}`);
  checkPositiveInt('pool', pool);
  check(Number.isInteger(gw) && gw >= 0, () => `gaussianWindow must be a non-negative integer, got ${gw}`);
  check(images.rank === 4, () => `hogTargets expects NHWC images [B, H, W, C], got shape [${images.shape.join(', ')}]`);
  const [b, H, W, c] = images.shape;
  check(H >= 2 && W >= 2, () => `hogTargets needs images of at least 2x2 pixels (reflect padding), got ${H}x${W}`);
  check(H % pool === 0 && W % pool === 0, () => `image size ${H}x${W} is not divisible by the HOG pool size ${pool}`);
  if (gw) check(H % gw === 0 && W % gw === 0, () => `image size ${H}x${W} is not divisible by gaussianWindow ${gw}`);
  const h = H / pool;
  const w = W / pool;
  return tf.tidy(() => {
    const xp = tf.mirrorPad(
      images as tf.Tensor4D,
      [
        [0, 0],
        [1, 1],
        [1, 1],
        [0, 0],
      ],
      'reflect',
    );
    const s = (di: number, dj: number) => tf.slice(xp, [0, di, dj, 0], [b, H, W, c]);
    const gx = tf.addN([tf.sub(s(0, 0), s(0, 2)), tf.mul(tf.sub(s(1, 0), s(1, 2)), 2), tf.sub(s(2, 0), s(2, 2))]);
    const gy = tf.addN([tf.add(s(0, 0), s(0, 2)), tf.mul(s(0, 1), 2), tf.neg(tf.add(s(2, 0), s(2, 2))), tf.mul(s(2, 1), -2)]);
    let mag = hypot(gx, gy);
    if (gw) {
      const k = tf.tensor2d(gaussianKernel(gw), [gw, gw]);
      mag = tf.mul(mag, tf.tile(k, [H / gw, W / gw]).reshape([1, H, W, 1]));
    }
    const phase = tf.mul(tf.atan2(stopGradient(gx), stopGradient(gy)), nbins / Math.PI);
    const bin = tf.cast(tf.mod(tf.floor(phase), nbins), 'int32');
    // int32 one-hot then cast: tfjs-wasm 4.22's OneHot ignores a float32 dtype and writes integer bits
    const onehot = tf.cast(tf.oneHot(bin.reshape([-1]), nbins), 'float32').reshape([b, H, W, c, nbins]);
    const hist = tf.mul(onehot, mag.reshape([b, H, W, c, 1])).reshape([b * h, pool, W * c * nbins]);
    const rows = tf.sum(hist, 1).reshape([b * h * w, pool, c * nbins]);
    let cells: tf.Tensor = tf.sum(rows, 1).reshape([b, h, w, c, nbins]);
    if (normalize) cells = l2Normalize(cells, 1e-12);
    return cells.reshape([b, h, w, c * nbins]) as tf.Tensor4D;
  });
}
