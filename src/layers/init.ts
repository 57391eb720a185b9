import * as tf from '@tensorflow/tfjs';

/**
 * Seeded initialisation, so the same seed gives the same weights on every backend (the draws are
 * made in JavaScript, not by a backend's RNG). `manualSeed` plays the role of `torch.manual_seed`.
 *
 * Uniform draws are mulberry32 (the generator of `utils/random.ts`, kept inline here so bulk fills
 * do not pay a closure call per draw); normal draws use Marsaglia and Tsang's ziggurat (128 layers),
 * which needs one 32-bit draw and no transcendental function for about 98.8% of its values, so a
 * 28 M-parameter model initialises in a fraction of the time Box-Muller took. The layer index takes
 * the low 7 bits of a draw and the value the other 25, so the two are independent (Doornik, 2005).
 */
let state = 0x9e3779b9 >>> 0;

let initEnabled = true;

/**
 * Build modules without drawing random initial values (every draw gives zeros, instantly): for models
 * whose weights are loaded right after (timm's `pretrained=True` path). The RNG is not advanced.
 */
export function withoutInit<T>(build: () => T): T {
  const prev = initEnabled;
  initEnabled = false;
  try {
    return build();
  } finally {
    initEnabled = prev;
  }
}

/** Whether initial values are drawn (false inside {@link withoutInit}). */
export function initEnabledNow(): boolean {
  return initEnabled;
}

/** Reset the global initialisation RNG. */
export function manualSeed(seed: number): void {
  const s = (seed >>> 0) ^ 0x9e3779b9;
  state = s === 0 ? 1 : s >>> 0;
}

/** The next 32-bit draw of the global mulberry32 generator, as an unsigned integer. */
function nextUint32(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/** A uniform draw in [0, 1) from the global seeded generator (mulberry32). */
export function randomUniform01(): number {
  return nextUint32() / 4294967296;
}

/** A uniform draw in the open interval (0, 1), for logarithms. */
function uniformOpen01(): number {
  return (nextUint32() + 0.5) / 4294967296;
}

/** Right edge of the base layer (where the tail starts) and the common area of the 128 layers. */
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
/** Values take 25 signed bits: [-2^24, 2^24). */
const ZIG_SCALE = 16777216;
const ZIG_K = new Float64Array(128); // |j| < K[i]: inside the rectangle of layer i, accept at once
const ZIG_W = new Float64Array(128); // x = j * W[i]
const ZIG_F = new Float64Array(128); // f(x_i) = exp(-x_i^2 / 2)
{
  let dn = ZIG_R;
  let tn = dn;
  const q = ZIG_V / Math.exp(-0.5 * dn * dn);
  ZIG_K[0] = (dn / q) * ZIG_SCALE;
  ZIG_K[1] = 0;
  ZIG_W[0] = q / ZIG_SCALE;
  ZIG_W[127] = dn / ZIG_SCALE;
  ZIG_F[0] = 1;
  ZIG_F[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    ZIG_K[i + 1] = (dn / tn) * ZIG_SCALE;
    tn = dn;
    ZIG_F[i] = Math.exp(-0.5 * dn * dn);
    ZIG_W[i] = dn / ZIG_SCALE;
  }
}

/** The rare ziggurat cases: a point in a layer's wedge, or in the tail beyond `ZIG_R`. */
function zigguratSlow(j: number, i: number): number {
  for (;;) {
    if (i === 0) {
      // tail: Marsaglia's method for |x| > r
      let x: number;
      let y: number;
      do {
        x = -Math.log(uniformOpen01()) / ZIG_R;
        y = -Math.log(uniformOpen01());
      } while (y + y < x * x);
      return j > 0 ? ZIG_R + x : -ZIG_R - x;
    }
    const x = j * ZIG_W[i];
    if (ZIG_F[i] + randomUniform01() * (ZIG_F[i - 1] - ZIG_F[i]) < Math.exp(-0.5 * x * x)) return x;
    const u = nextUint32();
    i = u & 127;
    j = (u | 0) >> 7;
    if (Math.abs(j) < ZIG_K[i]) return j * ZIG_W[i];
  }
}

/** A standard normal draw (ziggurat) from the global seeded generator. */
export function randomNormal(): number {
  const u = nextUint32();
  const i = u & 127;
  const j = (u | 0) >> 7;
  return Math.abs(j) < ZIG_K[i] ? j * ZIG_W[i] : zigguratSlow(j, i);
}

/**
 * Fill `out` with normal draws times `std` plus `mean`, redrawing values outside [lo, hi]. The fast
 * ziggurat path runs on a local copy of the generator state; the rare slow path syncs it.
 */
function fillNormal(out: Float32Array, std: number, mean: number, lo: number, hi: number): void {
  const n = out.length;
  let s = state | 0; // int32 arithmetic: the same bits as mulberry32's uint32, without heap numbers
  for (let k = 0; k < n;) {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = t ^ (t >>> 14);
    const i = u & 127;
    const j = u >> 7;
    let x: number;
    if ((j < 0 ? -j : j) < ZIG_K[i]) x = j * ZIG_W[i];
    else {
      state = s >>> 0;
      x = zigguratSlow(j, i);
      s = state | 0;
    }
    const v = x * std + mean;
    if (v >= lo && v <= hi) out[k++] = v;
  }
  state = s >>> 0;
}

/**
 * Truncated normal, as `torch.nn.init.trunc_normal_(t, mean, std, a, b)` (timm's `trunc_normal_`):
 * the bounds `a`, `b` are absolute values, not multiples of `std`, so `std = 0.02` is truncated at
 * +-2 (100 standard deviations: in effect a plain normal), as in timm.
 */
export function truncNormal(shape: number[], std = 0.02, a = -2, b = 2, mean = 0): tf.Tensor {
  if (!initEnabled) return tf.zeros(shape);
  if (!(a < b) || !(mean + 8 * std > a && mean - 8 * std < b))
    throw new RangeError(`truncNormal: the bounds [${a}, ${b}] leave (almost) nothing of N(${mean}, ${std}^2)`);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(n);
  fillNormal(out, std, mean, a, b);
  return tf.tensor(out, shape, 'float32');
}

/** Normal initialisation with standard deviation `std`. */
export function normal(shape: number[], std = 1): tf.Tensor {
  if (!initEnabled) return tf.zeros(shape);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(n);
  fillNormal(out, std, 0, -Infinity, Infinity);
  return tf.tensor(out, shape, 'float32');
}

/** Uniform initialisation in [-bound, bound] (PyTorch's default Linear/Conv init uses bound = 1/sqrt(fan_in)). */
export function uniform(shape: number[], bound: number): tf.Tensor {
  if (!initEnabled) return tf.zeros(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (randomUniform01() * 2 - 1) * bound;
  return tf.tensor(out, shape, 'float32');
}
