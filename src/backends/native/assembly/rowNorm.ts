// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/** Row-wise kernels over the last axis of a `[rows, C]` float32 array: LayerNorm and its two gradients. */
import { addToF64, f64ToF32 } from './accumulate';
import { hsum, loadLanes, mac, storeLanes } from './simd';

/**
 * Mean and `1 / sqrt(var + eps)` of one row (the biased variance, both means by division), in lanes 0 and 1:
 * one computation for LayerNorm and its gradients, so that the backward pass sees the forward's statistics.
 */
@inline
function rowStats(xr: usize, C: i32, eps: f32): v128 {
  const c4 = C & ~3;
  const rem = C - c4;
  const cf = <f32>C;
  let s0 = f32x4.splat(0);
  let s1 = s0;
  let c = 0;
  for (; c + 8 <= c4; c += 8) {
    s0 = f32x4.add(s0, v128.load(xr + (<usize>c << 2)));
    s1 = f32x4.add(s1, v128.load(xr + (<usize>c << 2), 16));
  }
  for (; c < c4; c += 4) s0 = f32x4.add(s0, v128.load(xr + (<usize>c << 2)));
  if (rem) s1 = f32x4.add(s1, loadLanes(xr + (<usize>c4 << 2), rem));
  const mean = hsum(f32x4.add(s0, s1)) / cf;
  const mv = f32x4.splat(mean);
  let q0 = f32x4.splat(0);
  let q1 = q0;
  for (c = 0; c + 8 <= c4; c += 8) {
    const d0 = f32x4.sub(v128.load(xr + (<usize>c << 2)), mv);
    const d1 = f32x4.sub(v128.load(xr + (<usize>c << 2), 16), mv);
    q0 = mac(q0, d0, d0);
    q1 = mac(q1, d1, d1);
  }
  for (; c < c4; c += 4) {
    const d = f32x4.sub(v128.load(xr + (<usize>c << 2)), mv);
    q0 = mac(q0, d, d);
  }
  let qs: f32 = 0;
  for (c = c4; c < C; c++) {
    const d = load<f32>(xr + (<usize>c << 2)) - mean;
    qs += d * d;
  }
  const variance = (hsum(f32x4.add(q0, q1)) + qs) / cf;
  return f32x4.replace_lane(f32x4.splat(mean), 1, <f32>1 / Mathf.sqrt(variance + eps));
}

/**
 * LayerNorm (Ba et al. 2016) of rows `[r0, r1)`: `((x - mean) * (1 / sqrt(var + eps))) * w + b` with the
 * biased variance `mean((x - mean)^2)`, both means by division, as `tf.moments` and `layers/norm.ts`.
 * `w` / `b` may be 0 (no affine part).
 */
export function layerNorm(x: usize, w: usize, b: usize, y: usize, C: i32, eps: f32, r0: i32, r1: i32): void {
  const rowBytes = <usize>C << 2;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * rowBytes;
    const yr = y + <usize>r * rowBytes;
    const st = rowStats(xr, C, eps);
    const mv = f32x4.splat(f32x4.extract_lane(st, 0));
    const rs = f32x4.splat(f32x4.extract_lane(st, 1));
    for (let c = 0; c < C; c += 4) {
      const n = min(4, C - c);
      const o = <usize>c << 2;
      let v = f32x4.mul(f32x4.sub(n == 4 ? v128.load(xr + o) : loadLanes(xr + o, n), mv), rs);
      if (w) v = f32x4.mul(v, n == 4 ? v128.load(w + o) : loadLanes(w + o, n));
      if (b) v = f32x4.add(v, n == 4 ? v128.load(b + o) : loadLanes(b + o, n));
      if (n == 4) v128.store(yr + o, v);
      else storeLanes(yr + o, v, n);
    }
  }
}

/**
 * Input gradient of `layerNorm` (affine `w`) for rows `[r0, r1)`, in the operation order of
 * `layerNormGrads` (fusedOps.ts): `xh = (x - mean) rstd`, `gw = dy w`, `dx = rstd ((gw - mean(gw)) - xh mean(gw xh))`.
 */
export function layerNormGradX(x: usize, w: usize, dy: usize, dx: usize, C: i32, eps: f32, r0: i32, r1: i32): void {
  const rowBytes = <usize>C << 2;
  const cf = <f32>C;
  for (let r = r0; r < r1; r++) {
    const xr = x + <usize>r * rowBytes;
    const gr = dy + <usize>r * rowBytes;
    const st = rowStats(xr, C, eps);
    const mv = f32x4.splat(f32x4.extract_lane(st, 0));
    const rs = f32x4.splat(f32x4.extract_lane(st, 1));
    let a = f32x4.splat(0);
    let b = a;
    for (let c = 0; c < C; c += 4) {
      const n = min(4, C - c);
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(loadLanes(xr + o, n), mv), rs);
      const gw = f32x4.mul(loadLanes(gr + o, n), loadLanes(w + o, n));
      a = f32x4.add(a, gw);
      b = mac(b, gw, xh);
    }
    const m1 = f32x4.splat(hsum(a) / cf);
    const m2 = f32x4.splat(hsum(b) / cf);
    const dr = dx + <usize>r * rowBytes;
    for (let c = 0; c < C; c += 4) {
      const n = min(4, C - c);
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(loadLanes(xr + o, n), mv), rs);
      const gw = f32x4.mul(loadLanes(gr + o, n), loadLanes(w + o, n));
      storeLanes(dr + o, f32x4.mul(rs, f32x4.sub(f32x4.sub(gw, m1), f32x4.mul(xh, m2))), n);
    }
  }
}

/**
 * Weight gradient of `layerNorm` for channels `[c0, c1)`: `dw_c = sum over the `rows` rows of dy xh`, each row's
 * products added in float64 (`acc`: `C` doubles of scratch, threads writing disjoint channels), then rounded.
 */
export function layerNormGradW(x: usize, dy: usize, dw: usize, acc: usize, C: i32, eps: f32, rows: i32, c0: i32, c1: i32): void {
  const rowBytes = <usize>C << 2;
  memory.fill(acc + (<usize>c0 << 3), 0, <usize>(c1 - c0) << 3);
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const gr = dy + <usize>r * rowBytes;
    const st = rowStats(xr, C, eps);
    const mv = f32x4.splat(f32x4.extract_lane(st, 0));
    const rs = f32x4.splat(f32x4.extract_lane(st, 1));
    for (let c = c0; c < c1; c += 4) {
      const n = min(4, c1 - c);
      const o = <usize>c << 2;
      const xh = f32x4.mul(f32x4.sub(loadLanes(xr + o, n), mv), rs);
      addToF64(acc + (<usize>c << 3), f32x4.mul(loadLanes(gr + o, n), xh), n);
    }
  }
  f64ToF32(acc + (<usize>c0 << 3), dw + (<usize>c0 << 2), c1 - c0);
}
