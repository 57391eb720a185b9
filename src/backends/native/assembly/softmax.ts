// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Softmax over the last axis of float32 rows, optionally after adding window attention's relative
 * position bias and shifted-window mask, and the softmax gradient. Three passes over each row (it stays
 * in L1): logits and row max, `exp(z - max)` and its sum, division by the sum; the operation order of
 * tfjs's cpu `Softmax` (`exp(x - max) / sum`).
 */
import { hsum, loadLanes, madd, nmadd, storeLanes } from './simd';

/** Below this `exp` is a float32 denormal or 0: such weights come out exactly 0. */
const UNDERFLOW: f32 = -87.33654;

/**
 * `exp(x)` per lane for `x <= 0` (a logit minus its row max), 0 below {@link UNDERFLOW} (so a `-inf`
 * or `-1e30` logit gives exactly 0), NaN for NaN. XNNPACK's "rr2-p5" scheme: `x = n ln2 + t` with a
 * two-constant Cody-Waite reduction, `2^n` from the bits of `x log2(e) + 1.5 * 2^23 + 127`, and
 * `exp(t)` by a degree-5 minimax polynomial (within 2 ulp). Every lane operation is a single SSE or
 * NEON instruction (no saturating conversion or NaN-propagating min/max).
 */
@inline
export function expNeg(x: v128): v128 {
  let n = madd(x, f32x4.splat(1.44269502162933349609375), f32x4.splat(12583039.0));
  const s = i32x4.shl(n, 23);
  n = f32x4.sub(n, f32x4.splat(12583039.0));
  let t = madd(n, f32x4.splat(-0.693145751953125), x);
  t = madd(n, f32x4.splat(-1.428606765330187045037746429443359375e-6), t);
  let p = madd(f32x4.splat(0.008289290592074394), t, f32x4.splat(0.04189782217144966));
  p = madd(p, t, f32x4.splat(0.16667652130126953));
  p = madd(p, t, f32x4.splat(0.4999915063381195));
  p = madd(p, t, f32x4.splat(0.9999997019767761));
  t = f32x4.mul(t, s);
  const e = madd(t, p, s);
  return v128.andnot(e, f32x4.lt(x, f32x4.splat(UNDERFLOW)));
}

/**
 * Rows `[r0, r1)` of `y = softmax(x + (bias + mask))` over rows of `M` values. Row `r` is row
 * `i = r % N` of matrix `g = r / N` of `x` (`[G, N, M]`); it takes row `i` of `bias[g % heads]`
 * (`bias`: `[heads, N, M]`) and of `mask[(g / heads) % nW]` (`mask`: `[nW, N, M]`), either of which may
 * be 0 (absent). With both absent this is a plain softmax (`N = heads = nW = 1`). `y` may equal `x`.
 * A NaN logit makes its row NaN, as on the cpu backend (through the sum; the max skips it).
 */
export function biasMaskSoftmax(x: usize, bias: usize, mask: usize, y: usize, M: i32, N: i32, heads: i32, nW: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>M << 2;
  const m4 = M & ~3;
  const rem = M - m4;
  for (let r = r0; r < r1; r++) {
    const g = r / N;
    const i = r - g * N;
    const xr = x + <usize>r * rowBytes;
    const yr = y + <usize>r * rowBytes;
    const br: usize = bias ? bias + <usize>((g % heads) * N + i) * rowBytes : 0;
    const mr: usize = mask ? mask + <usize>(((g / heads) % nW) * N + i) * rowBytes : 0;

    // pass 1: the logits (into y when something is added) and their max
    let mx0 = f32x4.splat(-Infinity);
    let mx1 = mx0;
    let c = 0;
    if (br && mr) {
      for (; c < m4; c += 4) {
        const o = <usize>c << 2;
        const v = f32x4.add(v128.load(xr + o), f32x4.add(v128.load(br + o), v128.load(mr + o)));
        v128.store(yr + o, v);
        mx0 = f32x4.pmax(mx0, v);
      }
    } else if (br || mr) {
      const a = br | mr;
      for (; c + 8 <= m4; c += 8) {
        const o = <usize>c << 2;
        const v0 = f32x4.add(v128.load(xr + o), v128.load(a + o));
        const v1 = f32x4.add(v128.load(xr + o, 16), v128.load(a + o, 16));
        v128.store(yr + o, v0);
        v128.store(yr + o, v1, 16);
        mx0 = f32x4.pmax(mx0, v0);
        mx1 = f32x4.pmax(mx1, v1);
      }
      for (; c < m4; c += 4) {
        const o = <usize>c << 2;
        const v = f32x4.add(v128.load(xr + o), v128.load(a + o));
        v128.store(yr + o, v);
        mx0 = f32x4.pmax(mx0, v);
      }
    } else {
      for (; c + 8 <= m4; c += 8) {
        const o = <usize>c << 2;
        mx0 = f32x4.pmax(mx0, v128.load(xr + o));
        mx1 = f32x4.pmax(mx1, v128.load(xr + o, 16));
      }
      for (; c < m4; c += 4) mx0 = f32x4.pmax(mx0, v128.load(xr + (<usize>c << 2)));
    }
    const mv4 = f32x4.pmax(mx0, mx1);
    let mx: f32 = max(max(f32x4.extract_lane(mv4, 0), f32x4.extract_lane(mv4, 1)), max(f32x4.extract_lane(mv4, 2), f32x4.extract_lane(mv4, 3)));
    const src: usize = br | mr ? yr : xr;
    for (; c < M; c++) {
      const o = <usize>c << 2;
      let v = load<f32>(xr + o);
      if (br && mr) v = v + (load<f32>(br + o) + load<f32>(mr + o));
      else if (br) v = v + load<f32>(br + o);
      else if (mr) v = v + load<f32>(mr + o);
      if (src == yr) store<f32>(yr + o, v);
      if (v > mx) mx = v;
    }

    // pass 2: e = exp(z - max) into y, and its sum
    const mv = f32x4.splat(mx);
    let s0 = f32x4.splat(0);
    let s1 = s0;
    for (c = 0; c + 8 <= m4; c += 8) {
      const o = <usize>c << 2;
      const e0 = expNeg(f32x4.sub(v128.load(src + o), mv));
      const e1 = expNeg(f32x4.sub(v128.load(src + o, 16), mv));
      v128.store(yr + o, e0);
      v128.store(yr + o, e1, 16);
      s0 = f32x4.add(s0, e0);
      s1 = f32x4.add(s1, e1);
    }
    for (; c < m4; c += 4) {
      const o = <usize>c << 2;
      const e = expNeg(f32x4.sub(v128.load(src + o), mv));
      v128.store(yr + o, e);
      s0 = f32x4.add(s0, e);
    }
    let s: f32 = hsum(f32x4.add(s0, s1));
    if (rem) {
      const o = <usize>m4 << 2;
      const e = expNeg(f32x4.sub(loadLanes(src + o, rem), mv));
      storeLanes(yr + o, e, rem);
      s += f32x4.extract_lane(e, 0);
      if (rem > 1) s += f32x4.extract_lane(e, 1);
      if (rem > 2) s += f32x4.extract_lane(e, 2);
    }

    // pass 3: divide by the sum
    const sv = f32x4.splat(s);
    for (c = 0; c < m4; c += 4) {
      const o = <usize>c << 2;
      v128.store(yr + o, f32x4.div(v128.load(yr + o), sv));
    }
    if (rem) {
      const o = <usize>m4 << 2;
      storeLanes(yr + o, f32x4.div(loadLanes(yr + o, rem), sv), rem);
    }
  }
}

/**
 * Gradient of a softmax over rows of `M` values, rows `[r0, r1)`, in the operation order of tfjs's
 * `Softmax` gradient: `p = dy * y`, `dx = p - sum(p) * y`.
 */
export function softmaxGrad(y: usize, dy: usize, dx: usize, M: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>M << 2;
  const m4 = M & ~3;
  const rem = M - m4;
  for (let r = r0; r < r1; r++) {
    const base = <usize>r * rowBytes;
    const yr = y + base;
    const gr = dy + base;
    const xr = dx + base;
    let s0 = f32x4.splat(0);
    let s1 = s0;
    let c = 0;
    for (; c + 8 <= m4; c += 8) {
      const o = <usize>c << 2;
      const p0 = f32x4.mul(v128.load(gr + o), v128.load(yr + o));
      const p1 = f32x4.mul(v128.load(gr + o, 16), v128.load(yr + o, 16));
      v128.store(xr + o, p0);
      v128.store(xr + o, p1, 16);
      s0 = f32x4.add(s0, p0);
      s1 = f32x4.add(s1, p1);
    }
    for (; c < m4; c += 4) {
      const o = <usize>c << 2;
      const p = f32x4.mul(v128.load(gr + o), v128.load(yr + o));
      v128.store(xr + o, p);
      s0 = f32x4.add(s0, p);
    }
    let s: f32 = hsum(f32x4.add(s0, s1));
    for (; c < M; c++) {
      const o = <usize>c << 2;
      const p = load<f32>(gr + o) * load<f32>(yr + o);
      store<f32>(xr + o, p);
      s += p;
    }
    const sv = f32x4.splat(s);
    for (c = 0; c < m4; c += 4) {
      const o = <usize>c << 2;
      v128.store(xr + o, nmadd(sv, v128.load(yr + o), v128.load(xr + o)));
    }
    if (rem) {
      const o = <usize>m4 << 2;
      storeLanes(xr + o, nmadd(sv, loadLanes(yr + o, rem), loadLanes(xr + o, rem)), rem);
    }
  }
}
