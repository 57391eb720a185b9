// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Global response norm (ConvNeXt V2, Woo et al. 2023, eq. 1-3) on NHWC float32 maps `[B, P, C]` (P = H*W
 * pixels), for batches `[b0, b1)`, in the operation order of `layers/grn.ts`:
 * `G_c = sqrt(sum_p x_pc^2)`, `N_c = G_c / (mean_c G + eps)`, `y = x * (gamma_c N_c + 1) + beta_c`.
 * One pass reads the map for the sums of squares (float32 lanes over blocks of pixels, added in float64, as
 * `Sum` is), one reads it again and writes `y`. `scratch`: `12 C` bytes (the float64 sums, then the scales).
 */
import { addToF64 } from './accumulate';
import { loadLanes, storeLanes } from './simd';

const BLOCK = 256;

export function grn(x: usize, gamma: usize, beta: usize, y: usize, P: i32, C: i32, eps: f32, scratch: usize, b0: i32, b1: i32): void {
  const pix = <usize>C << 2;
  const sums = scratch;
  const scale = scratch + (<usize>C << 3);
  for (let b = b0; b < b1; b++) {
    const xb = x + <usize>b * <usize>P * pix;
    const yb = y + <usize>b * <usize>P * pix;
    memory.fill(sums, 0, <usize>C << 3);
    for (let p0 = 0; p0 < P; p0 += BLOCK) {
      const p1 = min(P, p0 + BLOCK);
      for (let c = 0; c < C; c += 4) {
        const n = min(4, C - c);
        const co = <usize>c << 2;
        let s = f32x4.splat(0);
        let xp = xb + <usize>p0 * pix + co;
        for (let p = p0; p < p1; p++) {
          const v = loadLanes(xp, n);
          s = f32x4.add(s, f32x4.mul(v, v));
          xp += pix;
        }
        addToF64(sums + (<usize>c << 3), s, n);
      }
    }
    // G, its mean over the channels, and the per-channel scale gamma * N + 1
    let mean: f64 = 0;
    for (let c = 0; c < C; c++) {
      const g = <f32>Math.sqrt(<f64>(<f32>load<f64>(sums + (<usize>c << 3))));
      store<f32>(scale + (<usize>c << 2), g);
      mean += <f64>g;
    }
    const denom = <f32>(<f32>(mean / <f64>C) + eps);
    for (let c = 0; c < C; c++) {
      const o = scale + (<usize>c << 2);
      store<f32>(o, load<f32>(gamma + (<usize>c << 2)) * (load<f32>(o) / denom) + <f32>1);
    }
    for (let p = 0; p < P; p++) {
      const xp = xb + <usize>p * pix;
      const yp = yb + <usize>p * pix;
      for (let c = 0; c < C; c += 4) {
        const n = min(4, C - c);
        const co = <usize>c << 2;
        const v = f32x4.add(f32x4.mul(loadLanes(xp + co, n), loadLanes(scale + co, n)), loadLanes(beta + co, n));
        storeLanes(yp + co, v, n);
      }
    }
  }
}
