// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Float64 accumulation of float32 partial sums, for the filter gradients that sum over every output
 * position (tens of thousands of terms): partial sums over one output row stay in float32 registers,
 * then are added into a float64 buffer, so the result does not drift with the image size.
 */

/** `acc[0..n) (f64) += lanes of v` for the first `n` (1..4) lanes. */
export function addToF64(acc: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(acc, f64x2.add(v128.load(acc), f64x2.promote_low_f32x4(v)));
    v128.store(acc, f64x2.add(v128.load(acc, 16), f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 0, 1))), 16);
    return;
  }
  store<f64>(acc, load<f64>(acc) + <f64>f32x4.extract_lane(v, 0));
  if (n > 1) store<f64>(acc, load<f64>(acc, 8) + <f64>f32x4.extract_lane(v, 1), 8);
  if (n > 2) store<f64>(acc, load<f64>(acc, 16) + <f64>f32x4.extract_lane(v, 2), 16);
}

/** `out[i] = f32(acc[i])` for `i < n` (float64 buffer to float32 array). */
export function f64ToF32(acc: usize, out: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f32>(out + (<usize>i << 2), <f32>load<f64>(acc + (<usize>i << 3)));
}
