import * as tf from '@tensorflow/tfjs';

/**
 * 3-D window helpers of the Video Swin Transformer (Liu et al. 2022, sec. 3.2) on NTHWC maps
 * `[B, D, H, W, C]`, written with reshapes and rank-4 transposes only (rank >= 5 transposes are slow
 * on wasm).
 */

/** A `[d, h, w]` triple (time, height, width). */
export type Triple = [number, number, number];

/**
 * The reference's `get_window_size`: on every axis whose size is not larger than the window, the
 * window is clamped to the size and the shift on that axis is dropped.
 */
export function clampWindow(size: Triple, window: Triple, shift: Triple): { window: Triple; shift: Triple } {
  const w = window.slice() as Triple;
  const s = shift.slice() as Triple;
  for (let i = 0; i < 3; i++) {
    if (size[i] <= window[i]) {
      w[i] = size[i];
      s[i] = 0;
    }
  }
  return { window: w, shift: s };
}

/** `[B, D, H, W, C]` -> `[B * nW, wd * wh * ww, C]`: windows in (d, h, w) order, tokens in (d, h, w) raster order. */
export function windowPartition3d(x: tf.Tensor, window: Triple): tf.Tensor3D {
  const [b, d, h, w, c] = x.shape;
  const [wd, wh, ww] = window;
  const nd = d / wd;
  const nh = h / wh;
  const nw = w / ww;
  return tf.tidy(() =>
    x
      .reshape([b * nd, wd, nh, wh * w * c])
      .transpose([0, 2, 1, 3]) // (b nd) nh wd (wh nw ww c)
      .reshape([b * nd * nh, wd * wh, nw, ww * c])
      .transpose([0, 2, 1, 3]) // (b nd nh) nw (wd wh) (ww c)
      .reshape([b * nd * nh * nw, wd * wh * ww, c]),
  );
}

/** Inverse of {@link windowPartition3d}: `[B * nW, N, C]` -> `[B, D, H, W, C]`. */
export function windowReverse3d(windows: tf.Tensor, window: Triple, size: Triple): tf.Tensor5D {
  const c = windows.shape[windows.rank - 1];
  const [d, h, w] = size;
  const [wd, wh, ww] = window;
  const nd = d / wd;
  const nh = h / wh;
  const nw = w / ww;
  const b = (windows.shape[0] as number) / (nd * nh * nw);
  return tf.tidy(
    () =>
      windows
        .reshape([b * nd * nh, nw, wd * wh, ww * c])
        .transpose([0, 2, 1, 3]) // (b nd nh) (wd wh) nw (ww c)
        .reshape([b * nd, nh, wd, wh * w * c])
        .transpose([0, 2, 1, 3]) // (b nd) wd nh (wh w c)
        .reshape([b, d, h, w, c]) as tf.Tensor5D,
  );
}

/** `x` viewed as `[before, size(axis), after]`, so that slicing and padding one axis stay 3-D. */
function view3(x: tf.Tensor, axis: number): tf.Tensor3D {
  const s = x.shape;
  const before = s.slice(0, axis).reduce((a, v) => a * v, 1);
  const after = s.slice(axis + 1).reduce((a, v) => a * v, 1);
  return x.reshape([before, s[axis], after]);
}

/** `torch.roll(x, shifts, dims=(1, 2, 3))` on `[B, D, H, W, C]`. */
export function roll3d(x: tf.Tensor, shifts: Triple): tf.Tensor {
  return tf.tidy(() => {
    let y = x;
    for (let i = 0; i < 3; i++) {
      const n = x.shape[i + 1];
      const r = ((shifts[i] % n) + n) % n;
      if (!r) continue;
      const v = view3(y, i + 1);
      y = tf.concat([v.slice([0, n - r, 0], [-1, r, -1]), v.slice([0, 0, 0], [-1, n - r, -1])], 1).reshape(x.shape);
    }
    return y === x ? x.clone() : y;
  });
}

/** Zero-pad axes 1..3 of `[B, D, H, W, C]` at their end by `pad`. */
export function padEnd3d(x: tf.Tensor, pad: Triple): tf.Tensor {
  return tf.tidy(() => {
    let y = x;
    for (let i = 2; i >= 0; i--) {
      if (!pad[i]) continue;
      const shape = y.shape.slice();
      shape[i + 1] += pad[i];
      y = tf
        .pad(view3(y, i + 1), [
          [0, 0],
          [0, pad[i]],
          [0, 0],
        ])
        .reshape(shape);
    }
    return y === x ? x.clone() : y;
  });
}

/** `x[:, :D, :H, :W]` of `[B, Dp, Hp, Wp, C]`. */
export function cropEnd3d(x: tf.Tensor, size: Triple): tf.Tensor {
  return tf.tidy(() => {
    let y = x;
    for (let i = 0; i < 3; i++) {
      if (y.shape[i + 1] === size[i]) continue;
      const shape = y.shape.slice();
      shape[i + 1] = size[i];
      y = view3(y, i + 1)
        .slice([0, 0, 0], [-1, size[i], -1])
        .reshape(shape);
    }
    return y === x ? x.clone() : y;
  });
}

/** Python's `range(n)[start:stop]` bounds for a slice with optional negative ends (`-0` is 0). */
function pySlice(n: number, start: number | null, stop: number | null): [number, number] {
  const norm = (v: number | null, dflt: number) => (v === null ? dflt : v < 0 ? Math.max(0, n + v) : Math.min(v, n));
  return [norm(start, 0), norm(stop, n)];
}

/** The three region slices of the reference's masks along one axis of size n. */
function regionSlices(n: number, window: number, shift: number): [number, number][] {
  return [pySlice(n, null, -window), pySlice(n, -window, -shift), pySlice(n, -shift, null)];
}

/** A mask's values and `[nW, N, N]` shape, kept in JavaScript so a model can cache it per geometry. */
export interface MaskValues {
  values: Float32Array;
  shape: [number, number, number];
}

/** Region labels -> `[nW, N, N]` mask of 0 (same region) / `maskValue`, windows of `window` over `size`. */
function labelsToMask(labels: Int32Array, size: number[], window: number[], maskValue: number): MaskValues {
  const [d, h, w] = size.length === 3 ? size : [1, ...size];
  const [wd, wh, ww] = window.length === 3 ? window : [1, ...window];
  const nd = d / wd;
  const nh = h / wh;
  const nw = w / ww;
  const n = wd * wh * ww;
  const out = new Float32Array(nd * nh * nw * n * n);
  const ids = new Int32Array(n);
  let win = 0;
  for (let a = 0; a < nd; a++) {
    for (let bb = 0; bb < nh; bb++) {
      for (let cc = 0; cc < nw; cc++, win++) {
        let k = 0;
        for (let i = 0; i < wd; i++) {
          for (let j = 0; j < wh; j++) {
            for (let l = 0; l < ww; l++) ids[k++] = labels[((a * wd + i) * h + bb * wh + j) * w + cc * ww + l];
          }
        }
        for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) out[(win * n + p) * n + q] = ids[p] === ids[q] ? 0 : maskValue;
      }
    }
  }
  return { values: out, shape: [nd * nh * nw, n, n] };
}

/**
 * The reference's `compute_mask`: the shifted-window attention mask `[nW, N, N]` of a padded
 * `[Dp, Hp, Wp]` grid with the (clamped) window and shift, -100 between tokens of different regions
 * before the cyclic shift (values; `tf.tensor3d(values, shape)` makes the tensor). The region slices
 * reproduce Python's semantics exactly (a zero shift makes the last slice the whole axis).
 */
export function computeMask3d(size: Triple, window: Triple, shift: Triple, maskValue = -100): MaskValues {
  const [d, h, w] = size;
  const labels = new Int32Array(d * h * w);
  let cnt = 0;
  for (const [d0, d1] of regionSlices(d, window[0], shift[0])) {
    for (const [h0, h1] of regionSlices(h, window[1], shift[1])) {
      for (const [w0, w1] of regionSlices(w, window[2], shift[2])) {
        for (let i = d0; i < d1; i++) for (let j = h0; j < h1; j++) for (let l = w0; l < w1; l++) labels[(i * h + j) * w + l] = cnt;
        cnt++;
      }
    }
  }
  return labelsToMask(labels, size, window, maskValue);
}

/** The reference's `compute_mask_2d` (BEVT's image stream): square window `ws`, shift `shift`, on `[H, W]`. */
export function computeMask2d(h: number, w: number, ws: number, shift: number, maskValue = -100): MaskValues {
  const labels = new Int32Array(h * w);
  let cnt = 0;
  for (const [h0, h1] of regionSlices(h, ws, shift)) {
    for (const [w0, w1] of regionSlices(w, ws, shift)) {
      for (let j = h0; j < h1; j++) for (let l = w0; l < w1; l++) labels[j * w + l] = cnt;
      cnt++;
    }
  }
  return labelsToMask(labels, [h, w], [ws, ws], maskValue);
}

/**
 * The reference's 3-D `relative_position_index` of a `[wd, wh, ww]` window: `[N * N]` (N = wd wh ww)
 * indices into the `(2wd - 1)(2wh - 1)(2ww - 1)`-row bias table, row-major over (query, key).
 */
export function relativePositionIndex3d(window: Triple): Int32Array {
  const [wd, wh, ww] = window;
  const n = wd * wh * ww;
  const out = new Int32Array(n * n);
  const coord = (p: number): Triple => [Math.floor(p / (wh * ww)), Math.floor(p / ww) % wh, p % ww];
  for (let p = 0; p < n; p++) {
    const [pd, ph, pw] = coord(p);
    for (let q = 0; q < n; q++) {
      const [qd, qh, qw] = coord(q);
      out[p * n + q] = (pd - qd + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (ph - qh + wh - 1) * (2 * ww - 1) + (pw - qw + ww - 1);
    }
  }
  return out;
}
