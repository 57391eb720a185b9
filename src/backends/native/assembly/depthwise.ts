// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Depthwise 2-D convolution on NHWC float32 maps with one filter per channel (channel multiplier 1),
 * filter `[KH, KW, C]`, and its two gradients. Geometry follows tfjs's `computeConv2DInfo`: output
 * pixel (oh, ow) reads input (oh*sh - pt + kh*dh, ow*sw - pl + kw*dw), zero outside.
 * Channels are vectorised by 4; the forward pass also blocks 4 output columns so one filter load
 * serves four multiply-adds.
 */
import { addToF64, f64ToF32 } from './accumulate';
import { loadLanes, mac, storeLanes } from './simd';

/** First kernel tap k in [0, K) with `o*s - p + k*d >= 0`, for an output row/column `o`. */
function firstTap(o: i32, s: i32, p: i32, d: i32): i32 {
  const i0 = o * s - p;
  return i0 >= 0 ? 0 : (-i0 + d - 1) / d;
}

/** One past the last kernel tap with `o*s - p + k*d < n`. */
function endTap(o: i32, s: i32, p: i32, d: i32, n: i32, K: i32): i32 {
  const room = n - 1 - (o * s - p);
  return room < 0 ? 0 : min(K, room / d + 1);
}

/**
 * One output column, channels from `c0`: taps `[kh0, kh1)` (rows of `xr`, `rowP` bytes apart) times all `KW`
 * columns, the input already padded horizontally (every tap column exists).
 */
function column(xr: usize, w: usize, yp: usize, c0: i32, C: i32, KW: i32, dw: i32, kh0: i32, kh1: i32, rowTap: usize): void {
  const pix = <usize>C << 2;
  for (let c = c0; c < C; c += 4) {
    const n = min(4, C - c);
    const co = <usize>c << 2;
    let acc = f32x4.splat(0);
    for (let kh = kh0; kh < kh1; kh++) {
      const xk = xr + <usize>(kh - kh0) * rowTap + co;
      const wr = w + <usize>(kh * KW) * pix + co;
      for (let kw = 0; kw < KW; kw++) acc = mac(acc, loadLanes(xk + <usize>(kw * dw) * pix, n), loadLanes(wr + <usize>kw * pix, n));
    }
    storeLanes(yp + co, acc, n);
  }
}

/**
 * Forward pass for output rows `[r0, r1)` of the `N*OH` rows: `y[n, oh, ow, c] = sum x * w`. Where the taps
 * reach past the left or right edge, the input rows these output rows read are first copied with their zero
 * columns into `scratch` (`(rows read) * (W + left + right pad) * C` floats), so that no column needs a bounds
 * check; rows above and below are skipped per output row instead.
 */
export function depthwiseConv(
  x: usize, w: usize, y: usize, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32, r0: i32, r1: i32, scratch: usize,
): void {
  const pix = <usize>C << 2;
  const rowIn = <usize>W * pix;
  const c4 = C & ~3;
  const padL = max(0, pl);
  const padR = max(0, (OW - 1) * sw - pl + (KW - 1) * dw + 1 - W);
  const copy = padL > 0 || padR > 0;
  const rowP = copy ? <usize>(W + padL + padR) * pix : rowIn;
  const step = <usize>sw * pix;
  const unit = sw == 1 && dw == 1;
  let r = r0;
  while (r < r1) {
    const n = r / OH;
    const a = r - n * OH;
    const b = min(OH, a + (r1 - r));
    r += b - a;
    const xb = x + <usize>n * <usize>H * rowIn;
    // input rows [lo, hi) read by output rows [a, b) of image n; (ih, padded column q) lies at band + (ih - lo) rowP + q pix
    const lo = max(0, a * sh - pt);
    const hi = min(H, (b - 1) * sh - pt + (KH - 1) * dh + 1);
    let band = xb + <usize>lo * rowIn;
    if (copy) {
      for (let ih = lo; ih < hi; ih++) {
        const dst = scratch + <usize>(ih - lo) * rowP;
        memory.fill(dst, 0, <usize>padL * pix);
        memory.copy(dst + <usize>padL * pix, xb + <usize>ih * rowIn, rowIn);
        memory.fill(dst + <usize>padL * pix + rowIn, 0, <usize>padR * pix);
      }
      band = scratch;
    }
    const rowTap = <usize>dh * rowP;
    for (let oh = a; oh < b; oh++) {
      const kh0 = firstTap(oh, sh, pt, dh);
      const kh1 = endTap(oh, sh, pt, dh, H, KH);
      const yr = y + <usize>(n * OH + oh) * <usize>OW * pix;
      if (kh0 >= kh1) {
        memory.fill(yr, 0, <usize>OW * pix);
        continue;
      }
      // tap row kh0 of this output row; output column ow, tap kw reads padded column ow*sw + kw*dw
      const xr0 = band + <usize>(oh * sh - pt + kh0 * dh - lo) * rowP;
      let ow = 0;
      for (; ow + 4 <= OW; ow += 4) {
        const yp = yr + <usize>ow * pix;
        const xc = xr0 + <usize>ow * step;
        for (let c = 0; c < c4; c += 4) {
          const co = <usize>c << 2;
          let a0 = f32x4.splat(0);
          let a1 = a0, a2 = a0, a3 = a0;
          if (unit) {
            // stride and dilation 1: the four columns' inputs at tap kw are columns kw..kw+3, so each tap loads
            // one new input vector and slides the other three along
            for (let kh = kh0; kh < kh1; kh++) {
              let xp = xc + <usize>(kh - kh0) * rowTap + co;
              let wp = w + <usize>(kh * KW) * pix + co;
              let x0 = v128.load(xp);
              let x1 = v128.load(xp + pix);
              let x2 = v128.load(xp + 2 * pix);
              xp += 3 * pix;
              const wend = wp + <usize>KW * pix;
              while (wp < wend) {
                const x3 = v128.load(xp);
                const wv = v128.load(wp);
                a0 = mac(a0, x0, wv);
                a1 = mac(a1, x1, wv);
                a2 = mac(a2, x2, wv);
                a3 = mac(a3, x3, wv);
                x0 = x1;
                x1 = x2;
                x2 = x3;
                xp += pix;
                wp += pix;
              }
            }
          } else {
            for (let kh = kh0; kh < kh1; kh++) {
              const xr = xc + <usize>(kh - kh0) * rowTap + co;
              const wr = w + <usize>(kh * KW) * pix + co;
              for (let kw = 0; kw < KW; kw++) {
                const wv = v128.load(wr + <usize>kw * pix);
                const p = xr + <usize>(kw * dw) * pix;
                a0 = mac(a0, v128.load(p), wv);
                a1 = mac(a1, v128.load(p + step), wv);
                a2 = mac(a2, v128.load(p + 2 * step), wv);
                a3 = mac(a3, v128.load(p + 3 * step), wv);
              }
            }
          }
          v128.store(yp + co, a0);
          v128.store(yp + pix + co, a1);
          v128.store(yp + 2 * pix + co, a2);
          v128.store(yp + 3 * pix + co, a3);
        }
        if (c4 < C) for (let j = 0; j < 4; j++) column(xc + <usize>j * step, w, yp + <usize>j * pix, c4, C, KW, dw, kh0, kh1, rowTap);
      }
      for (; ow < OW; ow++) column(xr0 + <usize>ow * step, w, yr + <usize>ow * pix, 0, C, KW, dw, kh0, kh1, rowTap);
    }
  }
}

/**
 * Filter gradient for channels `[c0, c1)`: `dw[kh, kw, c] = sum_{n, oh, ow} x[n, ih, iw, c] dy[n, oh, ow, c]`,
 * summed per output row in float32 and across rows in float64 (`acc`: `KH*KW*C` doubles, scratch).
 */
export function depthwiseFilterGrad(
  x: usize, dy: usize, out: usize, acc: usize, N: i32, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32, c0: i32, c1: i32,
): void {
  const pix = <usize>C << 2;
  const taps = KH * KW;
  for (let t = 0; t < taps; t++) memory.fill(acc + ((<usize>t * <usize>C + <usize>c0) << 3), 0, <usize>(c1 - c0) << 3);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const kh0 = firstTap(oh, sh, pt, dh);
      const kh1 = endTap(oh, sh, pt, dh, H, KH);
      const dyr = dy + (<usize>(n * OH + oh) * <usize>OW) * pix;
      for (let kh = kh0; kh < kh1; kh++) {
        const xr = x + (<usize>(n * H + oh * sh - pt + kh * dh) * <usize>W) * pix;
        for (let kw = 0; kw < KW; kw++) {
          // output columns whose input column is inside [0, W)
          const off = kw * dw - pl;
          const lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
          const hiRoom = W - 1 - off;
          const hi = hiRoom < 0 ? 0 : min(OW, hiRoom / sw + 1);
          if (lo >= hi) continue;
          const ab = acc + (<usize>(kh * KW + kw) * <usize>C << 3);
          for (let c = c0; c < c1; c += 4) {
            const m = min(4, c1 - c);
            const co = <usize>c << 2;
            let s = f32x4.splat(0);
            let xp = xr + <usize>(lo * sw + off) * pix + co;
            let dp = dyr + <usize>lo * pix + co;
            const xstep = <usize>sw * pix;
            if (m == 4) {
              for (let ow = lo; ow < hi; ow++) {
                s = mac(s, v128.load(xp), v128.load(dp));
                xp += xstep;
                dp += pix;
              }
            } else {
              for (let ow = lo; ow < hi; ow++) {
                s = mac(s, loadLanes(xp, m), loadLanes(dp, m));
                xp += xstep;
                dp += pix;
              }
            }
            addToF64(ab + (<usize>c << 3), s, m);
          }
        }
      }
    }
  }
  for (let t = 0; t < taps; t++) {
    const o = <usize>t * <usize>C + <usize>c0;
    f64ToF32(acc + (o << 3), out + (o << 2), c1 - c0);
  }
}

/**
 * Input gradient for input rows `[r0, r1)` of the `N*H` rows:
 * `dx[n, ih, iw, c] = sum over taps with ih = oh*sh - pt + kh*dh, iw = ow*sw - pl + kw*dw of dy * w`.
 * `lists` is scratch for `2*(KH + KW)` ints (the taps that reach the current row / column).
 */
export function depthwiseInputGrad(
  dy: usize, w: usize, dx: usize, H: i32, W: i32, C: i32, KH: i32, KW: i32,
  sh: i32, sw: i32, dh: i32, dw: i32, pt: i32, pl: i32, OH: i32, OW: i32, r0: i32, r1: i32, lists: usize,
): void {
  const pix = <usize>C << 2;
  const rowOut = <usize>OW * pix;
  const khList = lists;
  const ohList = lists + (<usize>KH << 2);
  const kwList = ohList + (<usize>KH << 2);
  const owList = kwList + (<usize>KW << 2);
  for (let r = r0; r < r1; r++) {
    const n = r / H;
    const ih = r - n * H;
    let nh = 0;
    for (let kh = 0; kh < KH; kh++) {
      const t = ih + pt - kh * dh;
      if (t < 0 || t % sh != 0) continue;
      const oh = t / sh;
      if (oh >= OH) continue;
      store<i32>(khList + (<usize>nh << 2), kh);
      store<i32>(ohList + (<usize>nh << 2), oh);
      nh++;
    }
    const dxr = dx + <usize>r * <usize>W * pix;
    const dyb = dy + <usize>n * <usize>OH * rowOut;
    for (let iw = 0; iw < W; iw++) {
      let nw = 0;
      for (let kw = 0; kw < KW; kw++) {
        const t = iw + pl - kw * dw;
        if (t < 0 || t % sw != 0) continue;
        const ow = t / sw;
        if (ow >= OW) continue;
        store<i32>(kwList + (<usize>nw << 2), kw);
        store<i32>(owList + (<usize>nw << 2), ow);
        nw++;
      }
      const dp = dxr + <usize>iw * pix;
      for (let c = 0; c < C; c += 4) {
        const m = min(4, C - c);
        const co = <usize>c << 2;
        let acc = f32x4.splat(0);
        for (let a = 0; a < nh; a++) {
          const kh = load<i32>(khList + (<usize>a << 2));
          const dyr = dyb + <usize>load<i32>(ohList + (<usize>a << 2)) * rowOut + co;
          const wr = w + <usize>(kh * KW) * pix + co;
          if (m == 4) {
            for (let b = 0; b < nw; b++) {
              const kw = load<i32>(kwList + (<usize>b << 2));
              const ow = load<i32>(owList + (<usize>b << 2));
              acc = mac(acc, v128.load(dyr + <usize>ow * pix), v128.load(wr + <usize>kw * pix));
            }
          } else {
            for (let b = 0; b < nw; b++) {
              const kw = load<i32>(kwList + (<usize>b << 2));
              const ow = load<i32>(owList + (<usize>b << 2));
              acc = mac(acc, loadLanes(dyr + <usize>ow * pix, m), loadLanes(wr + <usize>kw * pix, m));
            }
          }
        }
        storeLanes(dp + co, acc, m);
      }
    }
  }
}
