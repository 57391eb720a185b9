import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { adaptiveAvgPool2d } from '../../src/layers/adaptivePool.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare } from '../helpers/fixtures.js';

/**
 * PyTorch's `adaptive_avg_pool2d` written as loops: output cell (i, j) averages input rows
 * `floor(i * H / oh) .. ceil((i + 1) * H / oh) - 1` and the same for columns (integer arithmetic).
 */
function directAdaptiveAvgPool(x: Float32Array, [b, h, w, c]: number[], oh: number, ow: number): Float32Array {
  const out = new Float32Array(b * oh * ow * c);
  const start = (i: number, n: number, o: number) => Math.floor((i * n) / o);
  const end = (i: number, n: number, o: number) => Math.floor(((i + 1) * n + o - 1) / o);
  for (let n = 0; n < b; n++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const [y0, y1, x0, x1] = [start(i, h, oh), end(i, h, oh), start(j, w, ow), end(j, w, ow)];
        for (let ch = 0; ch < c; ch++) {
          let s = 0;
          for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += x[((n * h + y) * w + xx) * c + ch];
          out[((n * oh + i) * ow + j) * c + ch] = s / ((y1 - y0) * (x1 - x0));
        }
      }
    }
  }
  return out;
}

const CASES: { shape: [number, number, number, number]; out: [number, number] }[] = [
  { shape: [2, 10, 7, 3], out: [3, 4] }, // uneven, overlapping bins
  { shape: [1, 5, 5, 4], out: [7, 7] }, // upsampling: PVT v2-Li on a 5x5 grid
  { shape: [2, 9, 13, 2], out: [4, 5] },
  { shape: [1, 14, 14, 3], out: [7, 7] }, // even bins
  { shape: [1, 6, 6, 2], out: [1, 1] }, // global average
];

for (const backend of BACKENDS) {
  describe(`adaptiveAvgPool2d on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const { shape, out } of CASES) {
      it(`[${shape.join(', ')}] -> ${out.join('x')} matches PyTorch's bins computed with loops`, () => {
        const x = tf.randomNormal(shape, 0, 1, 'float32', 11);
        const before = tf.memory().numTensors;
        const y = adaptiveAvgPool2d(x, out);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(y.shape).toEqual([shape[0], out[0], out[1], shape[3]]);
        const ref = tf.tensor(directAdaptiveAvgPool(x.dataSync() as Float32Array, shape, out[0], out[1]), y.shape);
        const r = compare(y, ref, 1e-6, 1e-6);
        expect(r.worstExcess, `max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        tf.dispose([x, y, ref]);
      });
    }

    it('is differentiable: the gradient of sum(pool(x) * g) spreads g over each bin', () => {
      const shape = [1, 5, 3, 1];
      const x = tf.randomNormal(shape, 0, 1, 'float32', 3);
      const g = tf.randomNormal([1, 2, 2, 1], 0, 1, 'float32', 4);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(adaptiveAvgPool2d(t, [2, 2]), g)))(x);
      // d/dx[y][x] = sum over the cells whose bins hold (y, x) of g / bin size
      const gv = g.dataSync();
      const exp = new Float32Array(15);
      const bins = (n: number, o: number) =>
        Array.from({ length: o }, (_, i) => [Math.floor((i * n) / o), Math.floor(((i + 1) * n + o - 1) / o)]);
      bins(5, 2).forEach(([y0, y1], i) =>
        bins(3, 2).forEach(([x0, x1], j) => {
          for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) exp[yy * 3 + xx] += gv[i * 2 + j] / ((y1 - y0) * (x1 - x0));
        }),
      );
      const ref = tf.tensor(exp, shape);
      expect(compare(dx, ref, 1e-6, 1e-6).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([x, g, dx, ref]);
    });

    it('rejects a non-NHWC input and an empty output size', () => {
      const x = tf.zeros([4, 4, 3]);
      expect(() => adaptiveAvgPool2d(x, 2)).toThrow(VisBackbonesError);
      const x4 = tf.zeros([1, 4, 4, 3]);
      expect(() => adaptiveAvgPool2d(x4, [0, 2])).toThrow(/output size must be positive, got 0x2/);
      tf.dispose([x, x4]);
    });
  });
}
