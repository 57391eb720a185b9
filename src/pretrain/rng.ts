import { check } from '../errors.js';
import { mulberry32 } from '../utils/random.js';

/**
 * A small seeded pseudo-random generator (mulberry32) for the pretraining pieces: mask generators,
 * data order and noise draws are made in JavaScript so the same seed gives the same masks and the
 * same batches on every backend. Each instance has its own state (unlike the global init RNG).
 */
export class SeededRandom {
  private readonly next: () => number;
  constructor(seed: number = Math.floor(Math.random() * 2 ** 32)) {
    check(Number.isFinite(seed), () => `seed must be a finite number, got ${seed}`);
    const state = (Math.floor(seed) >>> 0) ^ 0x2545f491;
    this.next = mulberry32(state === 0 ? 1 : state);
  }

  /** A uniform draw in [0, 1). */
  uniform(): number {
    return this.next();
  }

  /** A uniform draw in [lo, hi) (Python's `random.uniform`). */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** A uniform integer in [lo, hi] inclusive (Python's `random.randint`). */
  randint(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** A random permutation of `0 .. n-1` (Fisher-Yates, as `numpy.random.permutation`). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** `n` distinct indices drawn without replacement with probabilities proportional to `weights` (`torch.multinomial(w, n, replacement=False)`). */
  weightedSample(weights: ArrayLike<number>, n: number): Int32Array {
    const len = weights.length;
    check(n <= len, () => `cannot draw ${n} distinct indices from ${len} weights`);
    // Efraimidis-Spirakis: keys u^(1/w), take the n largest (equivalent to sequential draws without replacement).
    const keys = new Float64Array(len);
    for (let i = 0; i < len; i++) {
      const w = weights[i];
      check(w >= 0 && Number.isFinite(w), () => `sampling weights must be finite and >= 0, got ${w} at index ${i}`);
      const u = Math.max(this.uniform(), 1e-300);
      keys[i] = w > 0 ? Math.log(u) / w : -Infinity;
    }
    const idx = Array.from({ length: len }, (_, i) => i);
    idx.sort((a, b) => keys[b] - keys[a] || a - b);
    return Int32Array.from(idx.slice(0, n));
  }
}

/** A seed or a generator: a number makes a fresh {@link SeededRandom}, a generator is used (and advanced) as is. */
export type SeedLike = number | SeededRandom | undefined;

/** Resolve a {@link SeedLike} to a generator. */
export function toRng(seed: SeedLike): SeededRandom {
  return seed instanceof SeededRandom ? seed : new SeededRandom(seed);
}
