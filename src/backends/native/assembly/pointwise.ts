// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/** Elementwise kernels over `[i0, i1)` of float32 arrays: `erf` and the exact (erf) GELU. */
import { erfv, expv, loadLanes, mac, storeLanes } from './simd';

/** `y[i] = erf(x[i])`; four vectors per step, so their polynomial chains overlap. */
export function erf(x: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 16 <= i1; i += 16) {
    const p = <usize>i << 2;
    const r0 = erfv(v128.load(x + p));
    const r1 = erfv(v128.load(x + p, 16));
    const r2 = erfv(v128.load(x + p, 32));
    const r3 = erfv(v128.load(x + p, 48));
    v128.store(y + p, r0);
    v128.store(y + p, r1, 16);
    v128.store(y + p, r2, 32);
    v128.store(y + p, r3, 48);
  }
  for (; i < i1; i += 4) {
    const n = min(4, i1 - i);
    const p = <usize>i << 2;
    storeLanes(y + p, erfv(loadLanes(x + p, n)), n);
  }
}

/**
 * Exact GELU (Hendrycks & Gimpel 2016, eq. 1) in the operation order of `layers/activations.ts`:
 * `y = (x * 0.5) * (erf(x * SQRT1_2) + 1)`.
 */
export function gelu(x: usize, y: usize, i0: i32, i1: i32): void {
  const half = f32x4.splat(0.5);
  const r2 = f32x4.splat(<f32>Math.SQRT1_2);
  const one = f32x4.splat(1);
  let i = i0;
  for (; i + 16 <= i1; i += 16) {
    const p = <usize>i << 2;
    const v0 = v128.load(x + p);
    const v1 = v128.load(x + p, 16);
    const v2 = v128.load(x + p, 32);
    const v3 = v128.load(x + p, 48);
    const e0 = erfv(f32x4.mul(v0, r2));
    const e1 = erfv(f32x4.mul(v1, r2));
    const e2 = erfv(f32x4.mul(v2, r2));
    const e3 = erfv(f32x4.mul(v3, r2));
    v128.store(y + p, f32x4.mul(f32x4.mul(v0, half), f32x4.add(e0, one)));
    v128.store(y + p, f32x4.mul(f32x4.mul(v1, half), f32x4.add(e1, one)), 16);
    v128.store(y + p, f32x4.mul(f32x4.mul(v2, half), f32x4.add(e2, one)), 32);
    v128.store(y + p, f32x4.mul(f32x4.mul(v3, half), f32x4.add(e3, one)), 48);
  }
  for (; i < i1; i += 4) {
    const n = min(4, i1 - i);
    const p = <usize>i << 2;
    const v = loadLanes(x + p, n);
    storeLanes(y + p, f32x4.mul(f32x4.mul(v, half), f32x4.add(erfv(f32x4.mul(v, r2)), one)), n);
  }
}

/**
 * Gradient of the exact GELU: `dx = dy * (Phi(x) + x phi(x))` with `Phi(x) = (erf(x * SQRT1_2) + 1) * 0.5`
 * and `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`.
 */
export function geluGrad(x: usize, dy: usize, dx: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 16 <= i1; i += 16) {
    const p = <usize>i << 2;
    const g0 = dgelu(v128.load(x + p));
    const g1 = dgelu(v128.load(x + p, 16));
    const g2 = dgelu(v128.load(x + p, 32));
    const g3 = dgelu(v128.load(x + p, 48));
    v128.store(dx + p, f32x4.mul(v128.load(dy + p), g0));
    v128.store(dx + p, f32x4.mul(v128.load(dy + p, 16), g1), 16);
    v128.store(dx + p, f32x4.mul(v128.load(dy + p, 32), g2), 32);
    v128.store(dx + p, f32x4.mul(v128.load(dy + p, 48), g3), 48);
  }
  for (; i < i1; i += 4) {
    const n = min(4, i1 - i);
    const p = <usize>i << 2;
    storeLanes(dx + p, f32x4.mul(loadLanes(dy + p, n), dgelu(loadLanes(x + p, n))), n);
  }
}

/** `Phi(x) + x phi(x)` per lane. */
@inline
function dgelu(v: v128): v128 {
  const cdf = f32x4.mul(f32x4.add(erfv(f32x4.mul(v, f32x4.splat(<f32>Math.SQRT1_2))), f32x4.splat(1)), f32x4.splat(0.5));
  const pdf = f32x4.mul(expv(f32x4.mul(f32x4.mul(v, v), f32x4.splat(-0.5))), f32x4.splat(<f32>0.3989422804014327));
  return mac(cdf, v, pdf);
}
