import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/utils/random.js';
import { useBackend, type BackendName } from '../helpers/backends.js';

/** Seeded N(0, 1) values (mulberry32 + Box-Muller), identical on every backend. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const draw = mulberry32(seed >>> 0 || 1);
  const u = () => draw() + 0.5 / 4294967296; // (0, 1): never log(0)
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/** Run `f` on `backend` and return the values of the tensor(s) it makes (all disposed). */
export async function on(backend: BackendName, f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await useBackend(backend);
  return tf.tidy(() => {
    const r = f();
    return (Array.isArray(r) ? r : [r]).map((t) => t.dataSync().slice() as Float32Array);
  });
}

/** Max |a - e| and the worst excess over `atol + rtol |e|` (<= 0: within tolerance). */
export function diff(a: Float32Array, e: Float32Array, atol: number, rtol = 0): { maxAbs: number; worst: number } {
  if (a.length !== e.length) return { maxAbs: Infinity, worst: Infinity };
  let maxAbs = 0;
  let worst = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (!(d === d)) {
      if (a[i] !== a[i] && e[i] !== e[i]) continue; // both NaN
      return { maxAbs: NaN, worst: Infinity };
    }
    maxAbs = Math.max(maxAbs, d);
    worst = Math.max(worst, d - (atol + rtol * Math.abs(e[i])));
  }
  return { maxAbs, worst };
}

/**
 * erf in float64 from the all-positive series `erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1))`
 * (no cancellation; ~1e-15 relative for |x| <= 6), +-1 beyond 6.
 */
export function erf64(x: number): number {
  if (x !== x) return NaN;
  if (Math.abs(x) > 6) return Math.sign(x);
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}
