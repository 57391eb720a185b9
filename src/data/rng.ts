import { mulberry32 } from '../utils/random.js';

/** A seeded generator for the random data transforms (mulberry32): the same seed gives the same augmentations. */
export class DataRng {
  private readonly next: () => number;
  private spare: number | null = null;
  constructor(seed: number = Math.floor(Math.random() * 2 ** 32)) {
    const s = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
    this.next = mulberry32(s === 0 ? 1 : s);
  }

  /** Uniform in [0, 1) (`random.random`). */
  random(): number {
    return this.next();
  }

  /** Uniform in [lo, hi) (`random.uniform`). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi] inclusive (`random.randint`). */
  randint(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller), times `std` plus `mean` (`random.gauss`). */
  gauss(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return mean + std * v;
    }
    const u = Math.max(this.next(), 1e-300);
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(t);
    return mean + std * r * Math.cos(t);
  }

  /** Gamma(k, 1) (Marsaglia-Tsang). */
  gamma(k: number): number {
    if (k < 1) return this.gamma(k + 1) * Math.pow(Math.max(this.next(), 1e-300), 1 / k);
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.gauss();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b) (`numpy.random.beta`). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }

  /** A random permutation of `0 .. n-1`. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** One element of `xs`. */
  choice<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
}
