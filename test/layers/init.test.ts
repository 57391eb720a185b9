import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, normal, randomNormal, randomUniform01, truncNormal, uniform, withoutInit } from '../../src/layers/init.js';
import { mulberry32 } from '../../src/utils/random.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

/** erfc with fractional error below 1.2e-7 everywhere (Chebyshev fit, Numerical Recipes' erfcc). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
/** The standard normal CDF. */
const phi = (x: number): number => 0.5 * erfc(-x / Math.SQRT2);

/** Kolmogorov-Smirnov statistic of a sample against a CDF. */
function ksStatistic(values: ArrayLike<number>, cdf: (x: number) => number): number {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(s[i]);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  }
  return d;
}

/** 1% critical value of the one-sample KS statistic for large n (Kolmogorov's distribution: 1.628 / sqrt(n)). */
const ks01 = (n: number): number => 1.628 / Math.sqrt(n);

describe('seeded initialisation (ziggurat normals, mulberry32 uniforms)', () => {
  const n = 1 << 20;
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('uniform draws are the shared mulberry32 sequence of the seed', () => {
    for (const seed of [0, 1, 1234567, 0x9e3779b9]) {
      manualSeed(seed);
      const got = Array.from({ length: 1000 }, () => randomUniform01());
      const s = (seed >>> 0) ^ 0x9e3779b9;
      const ref = mulberry32(s === 0 ? 1 : s);
      const want = Array.from({ length: 1000 }, () => ref());
      expect(got).toEqual(want);
    }
  });

  it('normal draws follow N(0, 1): KS at 1%, moments, and the tail beyond the ziggurat base', () => {
    manualSeed(11);
    const x = new Float64Array(n);
    for (let i = 0; i < n; i++) x[i] = randomNormal();
    expect(ksStatistic(x, phi)).toBeLessThan(ks01(n));
    let m1 = 0;
    let m2 = 0;
    let m4 = 0;
    let tail = 0;
    for (const v of x) {
      m1 += v;
      m2 += v * v;
      m4 += v ** 4;
      if (Math.abs(v) > 3.442619855899) tail++;
    }
    m1 /= n;
    m2 /= n;
    m4 /= n;
    // standard errors: mean 1/sqrt(n), variance sqrt(2/n), fourth moment sqrt(96/n); 5 of each
    expect(Math.abs(m1)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m2 - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m4 - 3)).toBeLessThan(5 * Math.sqrt(96 / n));
    const pTail = erfc(3.442619855899 / Math.SQRT2);
    expect(Math.abs(tail - n * pTail)).toBeLessThan(5 * Math.sqrt(n * pTail));
    // deeper into the tail (drawn only by the tail method)
    const t = x.filter((v) => Math.abs(v) > 4);
    const pt = erfc(4 / Math.SQRT2);
    expect(Math.abs(t.length - n * pt)).toBeLessThan(5 * Math.sqrt(n * pt) + 1);
  });

  it('the bulk fill equals one draw at a time (same generator, same order)', () => {
    manualSeed(5);
    const bulk = normal([4097], 0.5);
    manualSeed(5);
    const one = Float32Array.from({ length: 4097 }, () => Math.fround(randomNormal() * 0.5));
    expect(Array.from(bulk.dataSync())).toEqual(Array.from(one));
    // the generator state after the fill continues the same sequence
    const after = randomUniform01();
    manualSeed(5);
    for (let i = 0; i < 4097; i++) randomNormal();
    expect(randomUniform01()).toBe(after);
    bulk.dispose();
  });

  it('truncNormal truncates at absolute bounds, as torch.nn.init.trunc_normal_ (std 1: at +-2)', () => {
    manualSeed(7);
    const t = truncNormal([n], 1);
    const v = t.dataSync();
    t.dispose();
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of v) {
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    expect(lo).toBeGreaterThanOrEqual(-2);
    expect(hi).toBeLessThanOrEqual(2);
    const z = phi(2) - phi(-2);
    expect(ksStatistic(v, (x) => (phi(x) - phi(-2)) / z)).toBeLessThan(ks01(n));
  });

  it('truncNormal with std 0.02 is (in effect) untruncated, as timm: about 4.55% beyond 2 std', () => {
    manualSeed(8);
    const t = truncNormal([n], 0.02);
    const v = t.dataSync();
    t.dispose();
    let beyond = 0;
    for (const x of v) if (Math.abs(x) > 0.04) beyond++;
    const p = erfc(2 / Math.SQRT2);
    expect(Math.abs(beyond - n * p)).toBeLessThan(5 * Math.sqrt(n * p));
    expect(ksStatistic(v, (x) => phi(x / 0.02))).toBeLessThan(ks01(n));
  });

  it('truncNormal with a mean and bounds in its range; bounds that leave nothing throw', () => {
    manualSeed(9);
    const t = truncNormal([20000], 0.5, 0, 3, 1);
    const v = t.dataSync();
    t.dispose();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(3);
    const a = phi(-2);
    const z = phi(4) - a;
    expect(ksStatistic(v, (x) => (phi((x - 1) / 0.5) - a) / z)).toBeLessThan(ks01(20000));
    expect(() => truncNormal([4], 0.02, 1, 2)).toThrow(/bounds \[1, 2\]/);
    expect(() => truncNormal([4], 1, 2, -2)).toThrow(/bounds/);
  });

  it('the same seed gives the same weights, another seed other weights; withoutInit draws nothing', () => {
    manualSeed(3);
    const a = truncNormal([64, 8]);
    const u1 = uniform([16], 0.1);
    manualSeed(3);
    const b = truncNormal([64, 8]);
    const u2 = uniform([16], 0.1);
    manualSeed(4);
    const c = truncNormal([64, 8]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(u1.dataSync())).toEqual(Array.from(u2.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    manualSeed(3);
    const z = withoutInit(() => truncNormal([8]));
    expect(Array.from(z.dataSync())).toEqual(new Array(8).fill(0));
    const d = truncNormal([64, 8]); // the RNG did not move inside withoutInit
    expect(Array.from(d.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([a, b, c, u1, u2, z, d]);
  });
});

for (const backend of BACKENDS) {
  describe(`seeded initialisation on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('gives the values of the cpu draw and leaks nothing', () => {
      manualSeed(21);
      const want = Array.from({ length: 300 }, () => Math.fround(randomNormal() * 0.02));
      const before = tf.memory().numTensors;
      manualSeed(21);
      const t = normal([300], 0.02);
      expect(Array.from(t.dataSync())).toEqual(want);
      t.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
