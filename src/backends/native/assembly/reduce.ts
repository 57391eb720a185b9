// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Sum over the middle axis of a `[O, R, I]` float32 array: `out[o, i] = sum_r x[o, r, i]`, for
 * `o` in `[o0, o1)`, accumulated in float64 (sums over every pixel of a batch run to 10^5 terms).
 * Any reduction over a contiguous block of axes has this form once the axes are merged.
 */
import { hsum, loadLanes } from './simd';

export function reduceSum(x: usize, out: usize, R: i32, I: i32, o0: i32, o1: i32): void {
  const rowBytes = <usize>I << 2;
  for (let o = o0; o < o1; o++) {
    const xo = x + <usize>o * <usize>R * rowBytes;
    const oo = out + <usize>o * rowBytes;
    if (I == 1) {
      // contiguous run of R values: float32 partial sums of 1024, added in float64
      let total: f64 = 0;
      for (let r0 = 0; r0 < R; r0 += 1024) {
        const r1 = min(R, r0 + 1024);
        let s0 = f32x4.splat(0);
        let s1 = s0;
        let r = r0;
        for (; r + 8 <= r1; r += 8) {
          s0 = f32x4.add(s0, v128.load(xo + (<usize>r << 2)));
          s1 = f32x4.add(s1, v128.load(xo + (<usize>r << 2), 16));
        }
        let t: f32 = hsum(f32x4.add(s0, s1));
        for (; r < r1; r++) t += load<f32>(xo + (<usize>r << 2));
        total += <f64>t;
      }
      store<f32>(oo, <f32>total);
      continue;
    }
    for (let i = 0; i < I; i += 4) {
      const n = min(4, I - i);
      const ci = <usize>i << 2;
      let lo = f64x2.splat(0);
      let hi = lo;
      let p = xo + ci;
      if (n == 4) {
        for (let r = 0; r < R; r++) {
          const v = v128.load(p);
          lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
          hi = f64x2.add(hi, f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 0, 1)));
          p += rowBytes;
        }
        v128.store(oo + ci, f32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
      } else {
        for (let r = 0; r < R; r++) {
          const v = loadLanes(p, n);
          lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
          hi = f64x2.add(hi, f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 0, 1)));
          p += rowBytes;
        }
        store<f32>(oo + ci, <f32>f64x2.extract_lane(lo, 0));
        if (n > 1) store<f32>(oo + ci, <f32>f64x2.extract_lane(lo, 1), 4);
        if (n > 2) store<f32>(oo + ci, <f32>f64x2.extract_lane(hi, 0), 8);
      }
    }
  }
}
