import * as tf from '@tensorflow/tfjs';

/**
 * Relative-position tables shared by the windowed attentions (Swin sec. 3.2 "relative position bias";
 * SwinV2 sec. 3.4 "log-spaced continuous position bias").
 */

/**
 * Swin's `relative_position_index` for a `wh x ww` window: `[N * N]` (N = wh * ww) indices into a
 * `(2wh - 1)(2ww - 1)`-row bias table, row-major over (query, key).
 */
export function relativePositionIndex(wh: number, ww: number): Int32Array {
  const n = wh * ww;
  const out = new Int32Array(n * n);
  for (let p = 0; p < n; p++) {
    const py = Math.floor(p / ww);
    const px = p % ww;
    for (let q = 0; q < n; q++) {
      const qy = Math.floor(q / ww);
      const qx = q % ww;
      out[p * n + q] = (py - qy + wh - 1) * (2 * ww - 1) + (px - qx + ww - 1);
    }
  }
  return out;
}

/**
 * SwinV2's log-spaced `relative_coords_table`: `[(2wh - 1)(2ww - 1), 2]` of
 * `sign(x) * log2(|x| + 1) / log2(8)` with `x = 8 * d / (W - 1)`, where W is the pretrained window
 * size when given (> 0), else the window itself (SwinV2 eq. 4).
 */
export function logSpacedCoordsTable(wh: number, ww: number, pretrainedWh = 0, pretrainedWw = 0): tf.Tensor2D {
  const dh = pretrainedWh > 0 ? pretrainedWh - 1 : wh - 1;
  const dw = pretrainedWw > 0 ? pretrainedWw - 1 : ww - 1;
  const rows = (2 * wh - 1) * (2 * ww - 1);
  const out = new Float32Array(rows * 2);
  const f = (v: number) => {
    const x = Math.fround(Math.fround(v) * 8);
    return (Math.sign(x) * Math.log2(Math.abs(x) + 1)) / Math.log2(8);
  };
  let r = 0;
  for (let i = -(wh - 1); i < wh; i++) {
    for (let j = -(ww - 1); j < ww; j++) {
      out[r * 2] = f(Math.fround(i / dh));
      out[r * 2 + 1] = f(Math.fround(j / dw));
      r++;
    }
  }
  return tf.tensor2d(out, [rows, 2]);
}

/**
 * Gather a `[T, heads]` bias table with an `[N * N]` index into `[heads, N, N]` (differentiable with
 * respect to the table).
 */
export function gatherRelativeBias(table: tf.Tensor, index: tf.Tensor1D, n: number): tf.Tensor3D {
  return tf.tidy(() => {
    const heads = table.shape[1] as number;
    return tf.gather(table, index).reshape([n, n, heads]).transpose([2, 0, 1]) as tf.Tensor3D;
  });
}

/**
 * Resize a flat `[(2wh - 1)(2ww - 1), heads]` relative position bias table to another window, as
 * timm's `resize_rel_pos_bias_table` does by default (BEiT's scheme): the source table is placed on a
 * geometric-progression grid that spans the target range, then linearly interpolated at integer
 * target offsets. Returns a new tensor.
 */
export function resizeRelPosBiasTable(table: tf.Tensor, newWindow: [number, number]): tf.Tensor2D {
  const [len, heads] = table.shape as [number, number];
  const src = Math.round(Math.sqrt(len));
  const dstH = 2 * newWindow[0] - 1;
  const dstW = 2 * newWindow[1] - 1;
  if (src * src !== len) throw new Error(`relative position bias table of ${len} rows is not square`);
  if (src === dstH && src === dstW) return table.clone() as tf.Tensor2D;
  const calc = (s: number, d: number): number[] => {
    let left = 1.01;
    let right = 1.5;
    let q = 0;
    const half = Math.floor(s / 2);
    while (right - left > 1e-6) {
      q = (left + right) / 2;
      const gp = (1 - q ** half) / (1 - q);
      if (gp > Math.floor(d / 2)) right = q;
      else left = q;
    }
    const dis: number[] = [];
    let cur = 1;
    for (let i = 0; i < half; i++) {
      dis.push(Math.fround(cur));
      cur += q ** (i + 1);
    }
    return [...dis.map((v) => -v).reverse(), 0, ...dis];
  };
  const ys = calc(src, dstH);
  const xs = calc(src, dstW);
  const ty = Math.floor(dstH / 2);
  const tx = Math.floor(dstW / 2);
  const locate = (grid: number[], v: number): [number, number] => {
    // searchsorted(grid, v) - 1, clamped to [0, n - 2] (linear extrapolation outside)
    let i = 0;
    for (let k = 0; k < grid.length; k++) if (grid[k] < v) i = k;
    i = Math.min(i, grid.length - 2);
    return [i, (v - grid[i]) / (grid[i + 1] - grid[i])];
  };
  const values = table.dataSync();
  const out = new Float32Array(dstH * dstW * heads);
  for (let a = 0; a < dstH; a++) {
    const [iy, fy] = locate(ys, a - ty);
    for (let b = 0; b < dstW; b++) {
      const [ix, fx] = locate(xs, b - tx);
      for (let h = 0; h < heads; h++) {
        const z = (r: number, c: number) => values[(r * src + c) * heads + h];
        out[(a * dstW + b) * heads + h] =
          z(iy, ix) * (1 - fy) * (1 - fx) + z(iy, ix + 1) * (1 - fy) * fx + z(iy + 1, ix) * fy * (1 - fx) + z(iy + 1, ix + 1) * fy * fx;
      }
    }
  }
  return tf.tensor2d(out, [dstH * dstW, heads]);
}
