import * as tf from '@tensorflow/tfjs';
import { fusedWindowPartition, fusedWindowReverse } from '../backends/fusedWindows.js';

/**
 * Window helpers of Swin (Liu et al. 2021, sec. 3.2), written with reshapes and rank-4 transposes
 * only (rank >= 5 transposes are slow on wasm).
 */

/** `[B, H, W, C]` -> `[B * nW, wh * ww, C]`, windows in row-major order. */
export function windowPartition(x: tf.Tensor, wh: number, ww: number): tf.Tensor3D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() =>
    x
      .reshape([(b * h) / wh, wh, w / ww, ww * c])
      .transpose([0, 2, 1, 3])
      .reshape([(b * h * w) / (wh * ww), wh * ww, c]),
  );
}

/** Inverse of {@link windowPartition}: `[B * nW, wh * ww, C]` -> `[B, H, W, C]`. */
export function windowReverse(windows: tf.Tensor, wh: number, ww: number, h: number, w: number): tf.Tensor4D {
  const c = windows.shape[windows.rank - 1];
  const b = (windows.shape[0] * wh * ww) / (h * w);
  return tf.tidy(() =>
    windows
      .reshape([(b * h) / wh, w / ww, wh, ww * c])
      .transpose([0, 2, 1, 3])
      .reshape([b, h, w, c]),
  );
}

/** `torch.roll(x, shifts=(sh, sw), dims=(1, 2))` on an NHWC map. */
export function roll2d(x: tf.Tensor, sh: number, sw: number): tf.Tensor4D {
  return tf.tidy(() => {
    let y = x as tf.Tensor4D;
    const [, h, w] = x.shape;
    const rh = ((sh % h) + h) % h;
    const rw = ((sw % w) + w) % w;
    if (rh) y = tf.concat([y.slice([0, h - rh, 0, 0], [-1, rh, -1, -1]), y.slice([0, 0, 0, 0], [-1, h - rh, -1, -1])], 1);
    if (rw) y = tf.concat([y.slice([0, 0, w - rw, 0], [-1, -1, rw, -1]), y.slice([0, 0, 0, 0], [-1, -1, w - rw, -1])], 2);
    return y === x ? (x.clone() as tf.Tensor4D) : y;
  });
}

/**
 * `windowPartition(roll2d(x, -sh, -sw), wh, ww)` (Swin's cyclic shift then partition): one copy where
 * the backend has our kernel (webgpu with our kernels), else the composition.
 */
export function shiftedWindowPartition(x: tf.Tensor, wh: number, ww: number, sh: number, sw: number): tf.Tensor3D {
  const fused = sh || sw ? fusedWindowPartition(x, wh, ww, sh, sw) : null;
  if (fused) return fused;
  return tf.tidy(() => windowPartition(sh || sw ? roll2d(x, -sh, -sw) : x, wh, ww));
}

/** `roll2d(windowReverse(windows, wh, ww, h, w), sh, sw)`: the inverse of {@link shiftedWindowPartition}, one copy where the backend has our kernel. */
export function shiftedWindowReverse(
  windows: tf.Tensor,
  wh: number,
  ww: number,
  h: number,
  w: number,
  sh: number,
  sw: number,
): tf.Tensor4D {
  const fused = sh || sw ? fusedWindowReverse(windows, wh, ww, h, w, sh, sw) : null;
  if (fused) return fused;
  return tf.tidy(() => {
    const merged = windowReverse(windows, wh, ww, h, w);
    return sh || sw ? roll2d(merged, sh, sw) : merged;
  });
}

/**
 * The shifted-window attention mask (Swin sec. 3.2, "efficient batch computation for shifted
 * configuration"): `[nW, N, N]` with 0 where two tokens of a window came from the same region
 * before the cyclic shift and `maskValue` (-100, as the reference) elsewhere. Built once per config.
 */
export function shiftedWindowMask(h: number, w: number, wh: number, ww: number, sh: number, sw: number, maskValue = -100): tf.Tensor3D {
  const img = new Int32Array(h * w);
  const hs = [
    [0, h - wh],
    [h - wh, h - sh],
    [h - sh, h],
  ];
  const wsl = [
    [0, w - ww],
    [w - ww, w - sw],
    [w - sw, w],
  ];
  let cnt = 0;
  for (const [h0, h1] of hs) {
    for (const [w0, w1] of wsl) {
      for (let i = h0; i < h1; i++) for (let j = w0; j < w1; j++) img[i * w + j] = cnt;
      cnt++;
    }
  }
  const nWh = h / wh;
  const nWw = w / ww;
  const n = wh * ww;
  const out = new Float32Array(nWh * nWw * n * n);
  for (let a = 0; a < nWh; a++) {
    for (let bb = 0; bb < nWw; bb++) {
      const win = a * nWw + bb;
      const ids = new Int32Array(n);
      for (let i = 0; i < wh; i++) for (let j = 0; j < ww; j++) ids[i * ww + j] = img[(a * wh + i) * w + bb * ww + j];
      for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) out[(win * n + p) * n + q] = ids[p] === ids[q] ? 0 : maskValue;
    }
  }
  return tf.tensor3d(out, [nWh * nWw, n, n]);
}
