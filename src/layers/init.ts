import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../utils/random.js';

/**
 * Seeded initialisation, so the same seed gives the same weights on every backend (the draws are
 * made in JavaScript, not by a backend's RNG). `manualSeed` plays the role of `torch.manual_seed`.
 */
let next = mulberry32(0x9e3779b9);

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
  const state = (seed >>> 0) ^ 0x9e3779b9;
  next = mulberry32(state === 0 ? 1 : state);
}

/** A uniform draw in [0, 1) from the global seeded generator (mulberry32). */
export function randomUniform01(): number {
  return next();
}

/** A standard normal draw (Box-Muller) from the global seeded generator. */
export function randomNormal(): number {
  let u = 0;
  while (u <= 1e-12) u = randomUniform01();
  const v = randomUniform01();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Truncated normal (timm's `trunc_normal_`, truncated at +-2 std). */
export function truncNormal(shape: number[], std = 0.02): tf.Tensor {
  if (!initEnabled) return tf.zeros(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let r = randomNormal();
    while (Math.abs(r) > 2) r = randomNormal();
    out[i] = r * std;
  }
  return tf.tensor(out, shape, 'float32');
}

/** Normal initialisation with standard deviation `std`. */
export function normal(shape: number[], std = 1): tf.Tensor {
  if (!initEnabled) return tf.zeros(shape);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = randomNormal() * std;
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
