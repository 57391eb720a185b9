// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Broadcasting elementwise binary ops on float32: `y = a op b` with the output viewed as rows of `R`
 * values, row `i` at `i * R`. Row `i = p * Q + q` of `a` starts at element `p * saP + q * saQ`; along a
 * row `a` advances by one (`aVec`) or stays put (broadcast), and likewise `b`. Any broadcast whose
 * output axes merge into three groups has this form. Each lane operation is IEEE single precision, as
 * on tfjs's cpu backend (which rounds the double result of +, -, *, / to float32: the same value).
 */

import { loadLanes, storeLanes } from './simd';
import { expNeg } from './softmax';

/** Op codes (see `binaryKernels.ts`). */
const ADD = 0;
const SUB = 1;
const MUL = 2;
const DIV = 3;
const MAX = 4;
const MIN = 5;

@inline
function apply(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case ADD:
      return f32x4.add(a, b);
    case SUB:
      return f32x4.sub(a, b);
    case MUL:
      return f32x4.mul(a, b);
    case DIV:
      return f32x4.div(a, b);
    case MAX:
      return f32x4.max(a, b);
    default:
      return f32x4.min(a, b);
  }
}

@inline
function apply1(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case ADD:
      return a + b;
    case SUB:
      return a - b;
    case MUL:
      return a * b;
    case DIV:
      return a / b;
    case MAX:
      return max(a, b);
    default:
      return min(a, b);
  }
}

/** One row segment `[r0, r1)`: `a` / `b` point at the row's first element of each operand. */
@inline
function row(op: i32, a: usize, b: usize, y: usize, aVec: bool, bVec: bool, r0: i32, r1: i32): void {
  let r = r0;
  if (aVec && bVec) {
    for (; r + 8 <= r1; r += 8) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, v128.load(a + o), v128.load(b + o)));
      v128.store(y + o, apply(op, v128.load(a + o, 16), v128.load(b + o, 16)), 16);
    }
    for (; r + 4 <= r1; r += 4) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, v128.load(a + o), v128.load(b + o)));
    }
    for (; r < r1; r++) {
      const o = <usize>r << 2;
      store<f32>(y + o, apply1(op, load<f32>(a + o), load<f32>(b + o)));
    }
  } else if (aVec) {
    const s = load<f32>(b);
    const sv = f32x4.splat(s);
    for (; r + 8 <= r1; r += 8) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, v128.load(a + o), sv));
      v128.store(y + o, apply(op, v128.load(a + o, 16), sv), 16);
    }
    for (; r + 4 <= r1; r += 4) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, v128.load(a + o), sv));
    }
    for (; r < r1; r++) {
      const o = <usize>r << 2;
      store<f32>(y + o, apply1(op, load<f32>(a + o), s));
    }
  } else {
    const s = load<f32>(a);
    const sv = f32x4.splat(s);
    for (; r + 8 <= r1; r += 8) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, sv, v128.load(b + o)));
      v128.store(y + o, apply(op, sv, v128.load(b + o, 16)), 16);
    }
    for (; r + 4 <= r1; r += 4) {
      const o = <usize>r << 2;
      v128.store(y + o, apply(op, sv, v128.load(b + o)));
    }
    for (; r < r1; r++) {
      const o = <usize>r << 2;
      store<f32>(y + o, apply1(op, s, load<f32>(b + o)));
    }
  }
}

/**
 * Rows `[i0, i1)`, elements `[r0, r1)` of each, of `y = a op b` (`op`: 0 add, 1 sub, 2 mul, 3 div,
 * 4 max, 5 min; max / min return NaN if either input is, as `Math.max` / `Math.min`). Strides are in
 * elements; `aVec` / `bVec` are 1 where the operand runs along the row, 0 where it is broadcast.
 */
export function binary(
  op: i32, a: usize, b: usize, y: usize, Q: i32, R: i32,
  saP: i32, saQ: i32, sbP: i32, sbQ: i32, aVec: i32, bVec: i32,
  i0: i32, i1: i32, r0: i32, r1: i32,
): void {
  for (let i = i0; i < i1; i++) {
    const p = i / Q;
    const q = i - p * Q;
    const ar = a + (<usize>(p * saP + q * saQ) << 2);
    const br = b + (<usize>(p * sbP + q * sbQ) << 2);
    const yr = y + (<usize>i * <usize>R << 2);
    switch (op) {
      case ADD:
        row(ADD, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
        break;
      case SUB:
        row(SUB, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
        break;
      case MUL:
        row(MUL, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
        break;
      case DIV:
        row(DIV, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
        break;
      case MAX:
        row(MAX, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
        break;
      default:
        row(MIN, ar, br, yr, aVec != 0, bVec != 0, r0, r1);
    }
  }
}

/** Unary op codes. */
const RELU = 0;
const SIGMOID = 1;

@inline
function unaryOp(op: i32, x: v128): v128 {
  if (op == RELU) {
    // Math.max(0, x), as tfjs's cpu relu: NaN stays NaN, -0 becomes 0
    return f32x4.max(x, f32x4.splat(0));
  }
  // 1 / (1 + exp(-x)) as e / (1 + e) or 1 / (1 + e) with e = exp(-|x|) <= 1 (no overflow)
  const e = expNeg(f32x4.neg(f32x4.abs(x)));
  const d = f32x4.add(f32x4.splat(1), e);
  return v128.bitselect(f32x4.div(e, d), f32x4.div(f32x4.splat(1), d), f32x4.lt(x, f32x4.splat(0)));
}

/** Elements `[i0, i1)` of `y = relu(x)` (`op` 0) or `sigmoid(x)` (`op` 1), float32. */
export function unary(op: i32, x: usize, y: usize, i0: i32, i1: i32): void {
  let i = i0;
  if (op == RELU) {
    for (; i + 4 <= i1; i += 4) v128.store(y + (<usize>i << 2), unaryOp(RELU, v128.load(x + (<usize>i << 2))));
  } else {
    for (; i + 4 <= i1; i += 4) v128.store(y + (<usize>i << 2), unaryOp(SIGMOID, v128.load(x + (<usize>i << 2))));
  }
  if (i < i1) {
    const n = i1 - i;
    const o = <usize>i << 2;
    storeLanes(y + o, op == RELU ? unaryOp(RELU, loadLanes(x + o, n)) : unaryOp(SIGMOID, loadLanes(x + o, n)), n);
  }
}
