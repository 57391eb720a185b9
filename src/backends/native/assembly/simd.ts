// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * SIMD helpers shared by the kernels: partial-vector loads/stores for the ragged edge of a row, and
 * float32 `exp` / `erf` evaluated four lanes at a time. No lookup tables: the module must not carry
 * data segments, because it runs on the tfjs-wasm backend's memory.
 */

/*
 * Multiply-adds. The relaxed-SIMD build (`--enable relaxed-simd`, see ../build.mjs) emits
 * `f32x4.relaxed_madd` (one rounding where the hardware fuses, as x86 FMA3 / NEON do; two otherwise);
 * the SIMD128 build the separate multiply and add, in the operand order the kernels always had. The
 * branch is on a compile-time constant, so each build holds one form only.
 */

/** `acc + a * b` per lane. */
@inline
export function mac(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** `a * b + c` per lane. */
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** `c - a * b` per lane. */
@inline
export function nmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_nmadd(a, b, c);
  return f32x4.sub(c, f32x4.mul(a, b));
}

/** Store the first `n` lanes (1..4) of `v` at `p`. */
@inline
export function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** Load the first `n` lanes (1..4) from `p` (stride 4 bytes), zero in the others: never reads past `n`. */
@inline
export function loadLanes(p: usize, n: i32): v128 {
  if (n >= 4) return v128.load(p);
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (n > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (n > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Sum of the four lanes. */
@inline
export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Maximum of the four lanes. */
@inline
export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/**
 * `exp(x)` per lane: `x = n ln2 + r` with `|r| <= ln2 / 2`, `exp(r)` by Cephes' degree-6 polynomial,
 * scaled by `2^n` through the exponent bits (about 1 ulp). Inputs are clamped to [-87.3, 88.3]: results
 * below `2^-126` come out as that (not as denormals), which a softmax cannot tell apart from zero.
 */
@inline
export function expv(x: v128): v128 {
  x = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.33654)), f32x4.splat(88.3762626647949));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  let r = nmadd(n, f32x4.splat(0.693359375), x);
  r = nmadd(n, f32x4.splat(-2.12194440e-4), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  p = f32x4.add(madd(p, r2, r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/**
 * `erf(x)` per lane, within 1.3e-7 absolute and 2.6 ulp of the true value for every float32 input.
 * `|x| < 0.921875`: `x P(x^2)`, P of degree 5; `0.921875 <= |x| < 3.92`: a degree-14 polynomial in
 * `|x|` mapped to [-1, 1], sign restored; beyond: +-1 (erf rounds to 1 in float32 there).
 * Coefficients: least-squares fits on Chebyshev nodes against double-precision erf, rounded to float32.
 */
@inline
export function erfv(x: v128): v128 {
  const t = f32x4.abs(x);
  const u = f32x4.mul(x, x);
  let p = f32x4.splat(-0.000604698492679745);
  p = madd(p, u, f32x4.splat(0.005005586892366409));
  p = madd(p, u, f32x4.splat(-0.026776369661092758));
  p = madd(p, u, f32x4.splat(0.11282138526439667));
  p = madd(p, u, f32x4.splat(-0.3761253356933594));
  p = madd(p, u, f32x4.splat(1.1283791065216064));
  const small = f32x4.mul(x, p);

  const tc = f32x4.pmin(t, f32x4.splat(3.92));
  const s = f32x4.sub(f32x4.mul(tc, f32x4.splat(0.6670836210250854)), f32x4.splat(1.614967703819275));
  let q = f32x4.splat(0.00036740637733601034);
  q = madd(q, s, f32x4.splat(-0.00013184879207983613));
  q = madd(q, s, f32x4.splat(-0.002373442053794861));
  q = madd(q, s, f32x4.splat(0.002917526988312602));
  q = madd(q, s, f32x4.splat(0.0038219376001507044));
  q = madd(q, s, f32x4.splat(-0.012604713439941406));
  q = madd(q, s, f32x4.splat(0.01177914161235094));
  q = madd(q, s, f32x4.splat(0.005688202101737261));
  q = madd(q, s, f32x4.splat(-0.03453361988067627));
  q = madd(q, s, f32x4.splat(0.05677210912108421));
  q = madd(q, s, f32x4.splat(-0.05712021887302399));
  q = madd(q, s, f32x4.splat(0.03870362415909767));
  q = madd(q, s, f32x4.splat(-0.01748666912317276));
  q = madd(q, s, f32x4.splat(0.004818243905901909));
  q = madd(q, s, f32x4.splat(0.9993823170661926));
  const one = f32x4.splat(1);
  q = v128.bitselect(one, f32x4.pmin(q, one), f32x4.ge(t, f32x4.splat(3.92)));
  const signBit = v128.and(x, i32x4.splat(0x80000000));
  const large = v128.or(q, signBit);
  return v128.bitselect(small, large, f32x4.lt(t, f32x4.splat(0.921875)));
}
