// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Sum over the middle axis of a `[O, R, I]` float32 array: `out[o, i] = sum_r x[o, r, i]`, for
 * `o` in `[o0, o1)`, accumulated in float64 (sums over every pixel of a batch run to 10^5 terms).
 * Any reduction over a contiguous block of axes has this form once the axes are merged.
 */
import { addToF64, f64ToF32 } from './accumulate';
import { hsum, loadLanes, storeLanes } from './simd';

/** Rows summed in float32 before their sums join the float64 totals (one row of `I` floats per step). */
const BLOCK = 64;

/**
 * `out[o, i] = sum_r x[o, r, i]` for `o` in `[o0, o1)` and `i` in `[i0, i1)` (`i0` a multiple of 4 unless
 * `I == 1`). For `I > 1` the rows are read in memory order: a float32 row of partial sums (`scratch`, `4 I`
 * bytes, then `8 I` of float64 totals) takes `BLOCK` rows at a time, then joins the float64 totals.
 */
export function reduceSum(x: usize, out: usize, R: i32, I: i32, o0: i32, o1: i32, i0: i32, i1: i32, scratch: usize): void {
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
    const width = i1 - i0;
    const bytes = <usize>width << 2;
    const part = scratch;
    const totals = scratch + ((bytes + 15) & ~15);
    memory.fill(totals, 0, <usize>width << 3);
    const w4 = width & ~3;
    for (let r0 = 0; r0 < R; r0 += BLOCK) {
      const r1 = min(R, r0 + BLOCK);
      const first = xo + <usize>r0 * rowBytes + (<usize>i0 << 2);
      memory.copy(part, first, bytes);
      for (let r = r0 + 1; r < r1; r++) {
        const xr = xo + <usize>r * rowBytes + (<usize>i0 << 2);
        let i = 0;
        for (; i + 8 <= w4; i += 8) {
          const q = <usize>i << 2;
          v128.store(part + q, f32x4.add(v128.load(part + q), v128.load(xr + q)));
          v128.store(part + q, f32x4.add(v128.load(part + q, 16), v128.load(xr + q, 16)), 16);
        }
        for (; i < width; i += 4) {
          const n = min(4, width - i);
          const q = <usize>i << 2;
          storeLanes(part + q, f32x4.add(loadLanes(part + q, n), loadLanes(xr + q, n)), n);
        }
      }
      for (let i = 0; i < width; i += 4) addToF64(totals + (<usize>i << 3), loadLanes(part + (<usize>i << 2), min(4, width - i)), min(4, width - i));
    }
    f64ToF32(totals, oo + (<usize>i0 << 2), width);
  }
}
