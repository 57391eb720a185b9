import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { hogTargets } from '../../src/pretrain/hog.js';
import { normalizePatches, patchify, unpatchify } from '../../src/pretrain/patchify.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

for (const backend of BACKENDS) {
  describe(`patchify and HOG on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('patchify puts (row, column, channel) in each patch vector, row-major tokens; unpatchify inverts it', () => {
      const [b, H, W, c, p] = [2, 6, 4, 3, 2];
      const data = Float32Array.from({ length: b * H * W * c }, (_, i) => i);
      const x = tf.tensor4d(data, [b, H, W, c]);
      const before = tf.memory().numTensors;
      const t = patchify(x, p);
      expect(t.shape).toEqual([b, (H / p) * (W / p), p * p * c]);
      const v = t.dataSync();
      const w = W / p;
      // direct index computation
      for (let n = 0; n < b; n++)
        for (let hh = 0; hh < H / p; hh++)
          for (let ww = 0; ww < w; ww++)
            for (let pi = 0; pi < p; pi++)
              for (let qi = 0; qi < p; qi++)
                for (let ci = 0; ci < c; ci++) {
                  const tok = hh * w + ww;
                  const got = v[(n * (H / p) * w + tok) * p * p * c + (pi * p + qi) * c + ci];
                  expect(got).toBe(data[((n * H + hh * p + pi) * W + ww * p + qi) * c + ci]);
                }
      const back = unpatchify(t, p, [H / p, W / p]);
      expect(Array.from(back.dataSync())).toEqual(Array.from(data));
      tf.dispose([t, back]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expect(() => patchify(tf.zeros([1, 5, 4, 3]), 2)).toThrow(/5x4 is not divisible by the patch size 2/);
    });

    it('normalizePatches uses the unbiased variance and eps 1e-6', () => {
      const vals = [1, 2, 4, 7];
      const t = tf.tensor3d([[vals]]);
      const out = normalizePatches(t).dataSync();
      const mean = 3.5;
      const varU = vals.reduce((s, v) => s + (v - mean) ** 2, 0) / 3;
      vals.forEach((v, i) => expect(out[i]).toBeCloseTo((v - mean) / Math.sqrt(varU + 1e-6), 5));
      t.dispose();
    });

    it('hogTargets differentiates on this backend: finite gradients that match finite differences', () => {
      const x = tf.tidy(() => tf.randomUniform([1, 16, 16, 3], -1, 1, 'float32', 3));
      const w = tf.tidy(() => tf.randomUniform([1, 2, 2, 27], 0, 1, 'float32', 4));
      const f = (img: tf.Tensor) => tf.sum(tf.mul(hogTargets(img, { pool: 8, normalize: true }), w)) as tf.Scalar;
      const before = tf.memory().numTensors;
      const { value, grads } = tf.tidy(() => {
        const r = tf.valueAndGrad(f)(x);
        return { value: r.value, grads: r.grad };
      });
      expect(tf.memory().numTensors).toBe(before + 2);
      const g = grads.dataSync();
      expect(g.every((v) => Number.isFinite(v))).toBe(true);
      expect(Math.max(...Array.from(g).map(Math.abs))).toBeGreaterThan(0);
      // central differences on a few pixels (small step: no orientation bin flips for these pixels)
      const base = x.dataSync();
      for (const idx of [100, 301, 517, 640]) {
        const eps = 1e-3;
        const plus = base.slice();
        plus[idx] += eps;
        const minus = base.slice();
        minus[idx] -= eps;
        const fp = tf.tidy(() => f(tf.tensor4d(plus, x.shape as [number, number, number, number])).dataSync()[0]);
        const fm = tf.tidy(() => f(tf.tensor4d(minus, x.shape as [number, number, number, number])).dataSync()[0]);
        expect(g[idx]).toBeCloseTo((fp - fm) / (2 * eps), 1);
      }
      tf.dispose([value, grads, x, w]);
    });

    it('hogTargets: zero images give zero targets and zero (not NaN) gradients; bad sizes are rejected', () => {
      const z = tf.zeros([1, 8, 8, 3]);
      const g = tf.grad((img: tf.Tensor) => tf.sum(hogTargets(img)))(z);
      expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
      const h = hogTargets(z);
      expect(h.shape).toEqual([1, 1, 1, 27]);
      expect(Array.from(h.dataSync()).every((v) => v === 0)).toBe(true);
      tf.dispose([z, g, h]);
      expect(() => hogTargets(tf.zeros([1, 12, 16, 3]), { pool: 8 })).toThrow(/12x16 is not divisible by the HOG pool size 8/);
      expect(() => hogTargets(tf.zeros([12, 16, 3]))).toThrow(/NHWC/);
    });

    it('hogTargets: gaussianWindow weights the magnitudes by a tiled normalised Gaussian', () => {
      const x = tf.tidy(() => tf.randomUniform([1, 16, 16, 3], -1, 1, 'float32', 8));
      // with pool 1 the raw histogram sums to the (weighted) magnitude per pixel and channel
      const raw = hogTargets(x, { pool: 1, normalize: false }).reshape([16, 16, 3, 9]).sum(-1);
      const win = hogTargets(x, { pool: 1, normalize: false, gaussianWindow: 8 }).reshape([16, 16, 3, 9]).sum(-1);
      const r = raw.arraySync() as number[][][];
      const wv = win.arraySync() as number[][][];
      const std = 4;
      const g = Array.from({ length: 8 }, (_, i) => Math.exp(-0.5 * ((i - 3.5) / std) ** 2));
      const s = g.reduce((a, b) => a + b, 0) ** 2;
      for (const [i, j] of [
        [0, 0],
        [3, 4],
        [9, 15],
        [12, 7],
      ]) {
        const k = (g[i % 8] * g[j % 8]) / s;
        expect(wv[i][j][1]).toBeCloseTo(r[i][j][1] * k, 5);
      }
      tf.dispose([x, raw, win]);
    });
  });
}
