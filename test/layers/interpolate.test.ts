import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { interpolateNhwc, interpolateRows, resizeGrid, resizeWeights, ResizeOptions } from '../../src/layers/interpolate.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/*
 * Direct computations of PyTorch's F.interpolate (align_corners=False, size given), written from the
 * formulas of aten/src/ATen/native/UpSample.h and cpu/UpSampleKernel.cpp, one output pixel at a time:
 * every output pixel is the sum over its 2-D taps of w_y * w_x * x.
 */
type Taps = [number, number][]; // (input index, weight)
const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** Keys' cubic kernel in polynomial form. */
function keys(d: number, a: number): number {
  d = Math.abs(d);
  if (d <= 1) return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1;
  if (d < 2) return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a;
  return 0;
}

/** bicubic, antialias=False: A = -0.75 at x = (o + 0.5) s - 0.5, taps x0-1..x0+2 clamped to the border. */
function bicubicTaps(o: number, n: number, m: number): Taps {
  const x = (o + 0.5) * (n / m) - 0.5;
  const x0 = Math.floor(x);
  const t = x - x0;
  return [-1, 0, 1, 2].map((k) => [clamp(x0 + k, 0, n - 1), keys(t - k, -0.75)]);
}

/** bilinear, antialias=False: x = max((o + 0.5) s - 0.5, 0), taps x0 and min(x0 + 1, n - 1). */
function bilinearTaps(o: number, n: number, m: number): Taps {
  const x = Math.max((o + 0.5) * (n / m) - 0.5, 0);
  const x0 = Math.floor(x);
  const l = x - x0;
  return [
    [x0, 1 - l],
    [Math.min(x0 + 1, n - 1), l],
  ];
}

/** nearest (legacy): floor(o * n / m), clamped. */
function nearestTaps(o: number, n: number, m: number): Taps {
  return [[Math.min(Math.floor(o * (n / m)), n - 1), 1]];
}

/**
 * antialias=True (Pillow's scheme): filter centred at c = (o + 0.5) s with support r * max(s, 1), taps
 * i in [trunc(c - support + 0.5), trunc(c + support + 0.5)) cut to the input, weight
 * k((i + 0.5 - c) / max(s, 1)), normalised. Bicubic uses Keys a = -0.5 (r = 2), bilinear the triangle (r = 1).
 */
function aaTaps(o: number, n: number, m: number, cubic: boolean): Taps {
  const s = n / m;
  const r = cubic ? 2 : 1;
  const support = s >= 1 ? r * s : r;
  const c = (o + 0.5) * s;
  const lo = Math.max(0, Math.trunc(c - support + 0.5));
  const hi = Math.min(n, Math.trunc(c + support + 0.5));
  const k = (d: number) => (cubic ? keys(d, -0.5) : Math.max(0, 1 - Math.abs(d)));
  const taps: Taps = [];
  for (let i = lo; i < hi; i++) taps.push([i, k((i + 0.5 - c) / Math.max(s, 1))]);
  const total = taps.reduce((a, [, w]) => a + w, 0);
  return taps.map(([i, w]) => [i, w / total]);
}

function tapsFor(opts: ResizeOptions): (o: number, n: number, m: number) => Taps {
  if (opts.mode === 'nearest') return nearestTaps;
  const cubic = opts.mode === 'bicubic';
  if (opts.antialias) return (o, n, m) => aaTaps(o, n, m, cubic);
  return cubic ? bicubicTaps : bilinearTaps;
}

/** Direct resize of an NHWC array [b, h, w, c] to [b, oh, ow, c]. */
function directResize(x: Float32Array, [b, h, w, c]: number[], [oh, ow]: [number, number], opts: ResizeOptions): Float64Array {
  const taps = tapsFor(opts);
  const out = new Float64Array(b * oh * ow * c);
  for (let n = 0; n < b; n++) {
    for (let a = 0; a < oh; a++) {
      const ty = taps(a, h, oh);
      for (let q = 0; q < ow; q++) {
        const tx = taps(q, w, ow);
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (const [iy, wy] of ty) for (const [ix, wx] of tx) s += wy * wx * x[((n * h + iy) * w + ix) * c + ch];
          out[((n * oh + a) * ow + q) * c + ch] = s;
        }
      }
    }
  }
  return out;
}

const CASES: { name: string; opts: ResizeOptions }[] = [
  { name: 'bicubic', opts: { mode: 'bicubic' } },
  { name: 'bicubic antialias', opts: { mode: 'bicubic', antialias: true } },
  { name: 'bilinear', opts: { mode: 'bilinear' } },
  { name: 'bilinear antialias', opts: { mode: 'bilinear', antialias: true } },
  { name: 'nearest', opts: { mode: 'nearest' } },
];
// upsampling, downsampling, and a mix (one axis up, one down; non-integer ratios)
const SIZES: { inp: [number, number]; out: [number, number] }[] = [
  { inp: [4, 5], out: [7, 9] },
  { inp: [9, 11], out: [4, 3] },
  { inp: [6, 5], out: [3, 8] },
];

describe('resize weights: hand-derived PyTorch values', () => {
  it('bicubic (A = -0.75) 2 -> 4, first output: real -0.25, taps clamped to x0: weights 283/256 and -27/256', () => {
    // x = 0.5 * 0.5 - 0.5 = -0.25 -> x0 = -1, t = 0.75; taps -2,-1,0 clamp to 0; tap 1 weight cc2(1.25) = -27/256
    const w = resizeWeights(2, 4, { mode: 'bicubic' });
    expect(w[0]).toBeCloseTo(283 / 256, 12);
    expect(w[1]).toBeCloseTo(-27 / 256, 12);
  });
  it('bicubic antialias (a = -0.5) 2 -> 4, first output: taps 0, 1 with weights 37/34 and -3/34', () => {
    // center 0.25, support 2 (upsampling: not stretched); k(0.25) = 111/128, k(1.25) = -9/128, normalised by 102/128
    const w = resizeWeights(2, 4, { mode: 'bicubic', antialias: true });
    expect(w[0]).toBeCloseTo(37 / 34, 12);
    expect(w[1]).toBeCloseTo(-3 / 34, 12);
  });
  it('bicubic antialias 2x2 -> 1x1 is the mean (support stretched to 4, symmetric taps)', () => {
    const g = resizeGrid([1, 2, 3, 10], [2, 2], [1, 1], { mode: 'bicubic', antialias: true });
    expect(g[0]).toBeCloseTo(4, 12);
  });
  it('bicubic antialias 8 -> 4 (downsampling by 2): every row uses the stretched support and sums to 1', () => {
    const w = resizeWeights(8, 4, { mode: 'bicubic', antialias: true });
    for (let o = 0; o < 4; o++) {
      const row = Array.from(w.slice(o * 8, o * 8 + 8));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      // support 4 around center 2o + 1: taps trunc(2o - 2.5) .. trunc(2o + 5.5) - 1, cut to [0, 8)
      const nz = row.map((v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0);
      expect(nz[0]).toBe(Math.max(0, Math.trunc(2 * o + 1 - 4 + 0.5)));
    }
  });
  it('every mode reproduces its input when the size does not change', () => {
    for (const c of CASES) {
      const w = resizeWeights(5, 5, c.opts);
      for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) expect(w[i * 5 + j]).toBeCloseTo(i === j ? 1 : 0, 12);
    }
  });
});

describe('resizeGrid (plain 2-D grids) vs the direct computation', () => {
  for (const c of CASES) {
    it(c.name, () => {
      for (const { inp, out } of SIZES) {
        const vals = Float32Array.from({ length: inp[0] * inp[1] }, (_, i) => Math.sin(1.7 * i) + 0.1 * i);
        const got = resizeGrid(vals, inp, out, c.opts);
        const exp = directResize(vals, [1, inp[0], inp[1], 1], out, c.opts);
        expect(maxAbsDiff(got, exp), `${c.name} ${inp} -> ${out}`).toBeLessThan(1e-12);
      }
    });
  }
});

for (const backend of BACKENDS) {
  describe(`interpolateNhwc on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const c of CASES) {
      it(`${c.name}: upsampling and downsampling match the direct computation`, () => {
        for (const { inp, out } of SIZES) {
          const shape = [2, inp[0], inp[1], 3];
          const x = tf.randomNormal(shape, 0, 1, 'float32', 7);
          const before = tf.memory().numTensors;
          const y = interpolateNhwc(x, out, c.opts);
          expect(tf.memory().numTensors).toBe(before + 1);
          expect(y.shape).toEqual([2, out[0], out[1], 3]);
          const exp = directResize(x.dataSync() as Float32Array, shape, out, c.opts);
          expect(maxAbsDiff(y.dataSync(), exp), `${c.name} ${inp} -> ${out}`).toBeLessThan(2e-6);
          tf.dispose([x, y]);
        }
      });
    }

    for (const c of CASES) {
      it(`${c.name} is differentiable: d/dx sum(g * resize(x)) is the transposed resize of g`, () => {
        const taps = tapsFor(c.opts);
        const x = tf.randomNormal([1, 5, 4, 2], 0, 1, 'float32', 3);
        const g = tf.randomNormal([1, 3, 7, 2], 0, 1, 'float32', 4);
        const before = tf.memory().numTensors;
        const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(interpolateNhwc(t, [3, 7], c.opts), g)))(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        const gv = g.dataSync();
        const exp = new Float64Array(5 * 4 * 2);
        for (let a = 0; a < 3; a++) {
          for (const [iy, wy] of taps(a, 5, 3)) {
            for (let q = 0; q < 7; q++) {
              for (const [ix, wx] of taps(q, 4, 7))
                for (let ch = 0; ch < 2; ch++) exp[(iy * 4 + ix) * 2 + ch] += wy * wx * gv[(a * 7 + q) * 2 + ch];
            }
          }
        }
        expect(maxAbsDiff(dx.dataSync(), exp), c.name).toBeLessThan(2e-6);
        tf.dispose([x, g, dx]);
      });
    }

    it('interpolateRows resizes a [L, C] table along L as F.interpolate(mode="linear")', () => {
      const t = tf.tensor2d([
        [0, 1],
        [2, -1],
        [4, 3],
      ]);
      const r = interpolateRows(t, 5);
      const v = t.arraySync();
      const exp: number[] = [];
      for (let o = 0; o < 5; o++) {
        for (let c = 0; c < 2; c++) exp.push(bilinearTaps(o, 3, 5).reduce((s, [i, w]) => s + w * v[i][c], 0));
      }
      expect(maxAbsDiff(r.dataSync(), exp)).toBeLessThan(1e-6);
      tf.dispose([t, r]);
    });
  });
}

describe('interpolate errors', () => {
  it('rejects antialias for nearest / linear, alignCorners for nearest, and bad sizes', () => {
    expect(() => resizeWeights(4, 2, { mode: 'nearest', antialias: true })).toThrow(VisBackbonesError);
    expect(() => resizeWeights(4, 2, { mode: 'linear', antialias: true })).toThrow(/antialias/);
    expect(() => resizeWeights(4, 2, { mode: 'nearest', alignCorners: true })).toThrow(/alignCorners/);
    expect(() => resizeWeights(4, 0)).toThrow(/output size/);
    expect(() => resizeWeights(4, 2, { mode: 'area' as never })).toThrow(/unknown mode/);
    expect(() => interpolateNhwc(tf.zeros([2, 3]), [2, 2])).toThrow(/NHWC/);
    expect(() => resizeGrid([1, 2, 3], [2, 2], [1, 1])).toThrow(/expected 2x2/);
  });
});
