// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Filter gradient of a dense 2-D convolution on NHWC float32 maps, filter `[KH, KW, Ci, Co]`:
 * `dW[kh, kw, ci, co] = sum_{n, oh, ow} x[n, oh*sh - pt + kh*dh, ow*sw - pl + kw*dw, ci] dy[n, oh, ow, co]`.
 * For each tap this is `X_tap^T DY` over the output positions: a 4 (ci) x 8 (co) register tile walks
 * the positions of one output row in float32, then adds into a float64 buffer (see accumulate.ts).
 */
import { addToF64, f64ToF32 } from './accumulate';
import { loadLanes, mac } from './simd';

/**
 * Tasks `[t0, t1)` of `KH*KW*ceil(Ci/4)` (tap-major, then blocks of 4 input channels).
 * `acc` is scratch for `KH*KW*Ci*Co` doubles; `zero` points at 16 zero bytes.
 */
export function convFilterGrad(
  x: usize, dy: usize, out: usize, acc: usize, zero: usize,
  N: i32, H: i32, W: i32, Ci: i32, OH: i32, OW: i32, Co: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, t0: i32, t1: i32,
): void {
  const nCiB = (Ci + 3) >> 2;
  const xPix = <usize>Ci << 2;
  const dyPix = <usize>Co << 2;
  for (let task = t0; task < t1; task++) {
    const tap = task / nCiB;
    const ci0 = (task - tap * nCiB) << 2;
    const nci = min(4, Ci - ci0);
    const kh = tap / KW;
    const kw = tap - kh * KW;
    const accTap = acc + ((<usize>tap * <usize>Ci + <usize>ci0) * <usize>Co << 3);
    memory.fill(accTap, 0, (<usize>nci * <usize>Co) << 3);
    const off = kw * dw - pl;
    const lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
    const hiRoom = W - 1 - off;
    const hi = hiRoom < 0 ? 0 : min(OW, hiRoom / sw + 1);
    const xStep = <usize>sw * xPix;
    // rows of x past the last input channel read a zero (stride 0)
    const i1 = <usize>(nci > 1 ? 1 : 0);
    const i2 = <usize>(nci > 2 ? 1 : 0);
    const i3 = <usize>(nci > 3 ? 1 : 0);
    for (let co0 = 0; co0 < Co; co0 += 8) {
      const ncols = min(8, Co - co0);
      for (let n = 0; n < N; n++) {
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - pt + kh * dh;
          if (ih < 0 || ih >= H || lo >= hi) continue;
          let xp = x + ((<usize>(n * H + ih) * <usize>W + <usize>(lo * sw + off)) * xPix) + (<usize>ci0 << 2);
          let p1 = i1 ? xp + 4 : zero;
          let p2 = i2 ? xp + 8 : zero;
          let p3 = i3 ? xp + 12 : zero;
          const s1 = i1 * xStep;
          const s2 = i2 * xStep;
          const s3 = i3 * xStep;
          let dp = dy + ((<usize>(n * OH + oh) * <usize>OW + <usize>lo) * dyPix) + (<usize>co0 << 2);
          let c00 = f32x4.splat(0);
          let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
          for (let ow = lo; ow < hi; ow++) {
            let b0: v128, b1: v128;
            if (ncols == 8) {
              b0 = v128.load(dp);
              b1 = v128.load(dp, 16);
            } else {
              b0 = loadLanes(dp, ncols);
              b1 = ncols > 4 ? loadLanes(dp + 16, ncols - 4) : f32x4.splat(0);
            }
            let v = v128.load32_splat(xp);
            c00 = mac(c00, v, b0);
            c01 = mac(c01, v, b1);
            v = v128.load32_splat(p1);
            c10 = mac(c10, v, b0);
            c11 = mac(c11, v, b1);
            v = v128.load32_splat(p2);
            c20 = mac(c20, v, b0);
            c21 = mac(c21, v, b1);
            v = v128.load32_splat(p3);
            c30 = mac(c30, v, b0);
            c31 = mac(c31, v, b1);
            xp += xStep;
            p1 += s1;
            p2 += s2;
            p3 += s3;
            dp += dyPix;
          }
          const rowBytes = <usize>Co << 3;
          const a0 = accTap + (<usize>co0 << 3);
          addRow(a0, c00, c01, ncols);
          if (nci > 1) addRow(a0 + rowBytes, c10, c11, ncols);
          if (nci > 2) addRow(a0 + 2 * rowBytes, c20, c21, ncols);
          if (nci > 3) addRow(a0 + 3 * rowBytes, c30, c31, ncols);
        }
      }
    }
    // rows ci0..ci0+nci of this tap are contiguous in both buffers
    const o = (<usize>tap * <usize>Ci + <usize>ci0) * <usize>Co;
    f64ToF32(acc + (o << 3), out + (o << 2), nci * Co);
  }
}

function addRow(a: usize, v0: v128, v1: v128, ncols: i32): void {
  addToF64(a, v0, min(4, ncols));
  if (ncols > 4) addToF64(a + 32, v1, ncols - 4);
}
