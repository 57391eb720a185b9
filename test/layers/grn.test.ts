import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { GlobalResponseNorm } from '../../src/layers/grn.js';
import { GlobalResponseNormMlp } from '../../src/layers/grnMlp.js';
import { manualSeed, normal } from '../../src/layers/init.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/** ConvNeXt V2 eq. 1-3 written as loops over an NHWC array (float64). */
function grnLoops(x: Float32Array, [b, h, w, c]: number[], gamma: Float32Array, beta: Float32Array, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let n = 0; n < b; n++) {
    const g = new Float64Array(c);
    for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) g[ch] += x[(n * h * w + i) * c + ch] ** 2;
    for (let ch = 0; ch < c; ch++) g[ch] = Math.sqrt(g[ch]); // eq. 1
    const mean = g.reduce((a, v) => a + v, 0) / c;
    for (let i = 0; i < h * w; i++) {
      for (let ch = 0; ch < c; ch++) {
        const k = (n * h * w + i) * c + ch;
        const nx = g[ch] / (mean + eps); // eq. 2
        y[k] = gamma[ch] * (x[k] * nx) + beta[ch] + x[k]; // eq. 3
      }
    }
  }
  return y;
}

for (const backend of BACKENDS) {
  describe(`GlobalResponseNorm on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('NHWC form equals ConvNeXt V2 eq. 1-3 computed with loops', () => {
      manualSeed(3);
      const shape = [2, 3, 5, 6];
      const grn = new GlobalResponseNorm(6);
      const gamma = normal([6], 0.5);
      const beta = normal([6], 0.5);
      grn.loadStateDict({ weight: gamma, bias: beta });
      const x = normal(shape, 1);
      const before = tf.memory().numTensors;
      const y = grn.forward(x);
      const ref = grnLoops(x.dataSync() as Float32Array, shape, gamma.dataSync() as Float32Array, beta.dataSync() as Float32Array, 1e-6);
      const err = maxAbsDiff(y.dataSync(), ref);
      console.log(`GRN NHWC [${backend}] max abs err ${err}`);
      expect(err).toBeLessThan(1e-5);
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, gamma, beta]);
      grn.dispose();
    });

    it('channels-first form on NCHW input equals the loops on the same data', () => {
      manualSeed(4);
      const [b, h, w, c] = [2, 4, 3, 5];
      const grn = new GlobalResponseNorm(c, { channelsLast: false, eps: 1e-3 });
      const gamma = normal([c], 0.5);
      const beta = normal([c], 0.5);
      grn.loadStateDict({ weight: gamma, bias: beta });
      const xNhwc = normal([b, h, w, c], 1);
      const xNchw = xNhwc.transpose([0, 3, 1, 2]);
      const y = grn.forward(xNchw);
      expect(y.shape).toEqual([b, c, h, w]);
      const yNhwc = y.transpose([0, 2, 3, 1]);
      const ref = grnLoops(
        xNhwc.dataSync() as Float32Array,
        [b, h, w, c],
        gamma.dataSync() as Float32Array,
        beta.dataSync() as Float32Array,
        1e-3,
      );
      expect(maxAbsDiff(yNhwc.dataSync(), ref)).toBeLessThan(1e-5);
      tf.dispose([xNhwc, xNchw, y, yNhwc, gamma, beta]);
      grn.dispose();
    });

    it('starts as the identity and names its state weight / bias of shape [C]', () => {
      const grn = new GlobalResponseNorm(7);
      const sd = grn.stateDict();
      expect(Object.keys(sd).sort()).toEqual(['bias', 'weight']);
      expect(sd.weight.shape).toEqual([7]);
      const x = tf.randomNormal([1, 2, 2, 7]);
      const y = grn.forward(x);
      expect(maxAbsDiff(y.dataSync(), x.dataSync())).toBe(0);
      tf.dispose([x, y, ...Object.values(sd)]);
      grn.dispose();
    });

    it('GRN MLP: fc2(GRN(GELU(fc1(x)))) with Linear or 1x1-conv weights gives the same result', () => {
      manualSeed(5);
      const lin = new GlobalResponseNormMlp(4, { hiddenFeatures: 8 });
      const conv = new GlobalResponseNormMlp(4, { hiddenFeatures: 8, useConv: true });
      const sd = lin.stateDict();
      sd['grn.weight'].dispose();
      sd['grn.weight'] = normal([8], 0.5);
      lin.loadStateDict(sd);
      const sdConv: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(sd)) sdConv[k] = /fc\d\.weight/.test(k) ? v.reshape([...v.shape, 1, 1]) : v;
      conv.loadStateDict(sdConv);
      expect(conv.stateDict()['fc1.weight'].shape).toEqual([8, 4, 1, 1]);
      const x = normal([2, 3, 3, 4], 1);
      const a = lin.forward(x);
      const c = conv.forward(x);
      expect(maxAbsDiff(a.dataSync(), c.dataSync())).toBeLessThan(1e-6);
      tf.dispose([x, a, c, ...Object.values(sd), ...Object.values(sdConv)]);
      lin.dispose();
      conv.dispose();
    });

    it('rejects input of the wrong rank or channel count with a clear error', () => {
      const grn = new GlobalResponseNorm(4);
      const x3 = tf.zeros([2, 3, 4]);
      const x5 = tf.zeros([1, 2, 2, 5]);
      expect(() => grn.forward(x3)).toThrow(VisBackbonesError);
      expect(() => grn.forward(x5)).toThrow(/expected 4 channels on axis 3, got 5/);
      tf.dispose([x3, x5]);
      grn.dispose();
    });
  });
}
