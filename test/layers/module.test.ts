import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Conv2d } from '../../src/layers/conv2d.js';
import { manualSeed } from '../../src/layers/init.js';
import { Linear } from '../../src/layers/linear.js';
import { LayerNorm } from '../../src/layers/norm.js';
import { swin } from '../../src/models/swin/swinTransformer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/** Direct NCHW-weight convolution on an NHWC input, written as loops (PyTorch semantics). */
function directConv(x: number[][][][], w: number[][][][], bias: number[], stride: number, pad: number, groups: number): number[][][][] {
  const [b, h, wd, cin] = [x.length, x[0].length, x[0][0].length, x[0][0][0].length];
  const cout = w.length;
  const k = w[0][0].length;
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - k) / stride) + 1;
  const cinG = cin / groups;
  const coutG = cout / groups;
  const out: number[][][][] = [];
  for (let n = 0; n < b; n++) {
    out.push([]);
    for (let i = 0; i < ho; i++) {
      out[n].push([]);
      for (let j = 0; j < wo; j++) {
        const px: number[] = [];
        for (let o = 0; o < cout; o++) {
          const g = Math.floor(o / coutG);
          let s = bias[o];
          for (let c = 0; c < cinG; c++) {
            for (let u = 0; u < k; u++) {
              for (let v = 0; v < k; v++) {
                const yy = i * stride - pad + u;
                const xx = j * stride - pad + v;
                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                s += x[n][yy][xx][g * cinG + c] * w[o][c][u][v];
              }
            }
          }
          px.push(s);
        }
        out[n][i].push(px);
      }
    }
  }
  return out;
}

const maxDiff = (a: tf.Tensor, b: number[][][][] | number[][]) => maxAbsDiff(a.dataSync(), (b as unknown[]).flat(4) as number[]);

for (const backend of BACKENDS) {
  describe(`Module state dicts use PyTorch layouts (${backend})`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('Linear: weight [out, in]; y = x W^T + b', () => {
      const lin = new Linear(3, 2);
      const sd = {
        weight: tf.tensor2d([
          [1, 2, 3],
          [-1, 0.5, 2],
        ]),
        bias: tf.tensor1d([0.1, -0.2]),
      };
      lin.loadStateDict(sd);
      const x = tf.tensor2d([
        [1, 1, 1],
        [2, -1, 0.5],
      ]);
      const y = lin.forward(x);
      expect(
        maxDiff(y, [
          [6.1, 1.3],
          [1.6, -1.7],
        ]),
      ).toBeLessThan(1e-6);
      const back = lin.stateDict();
      expect(back.weight.shape).toEqual([2, 3]);
      expect(Array.from(back.weight.dataSync())).toEqual(Array.from(sd.weight.dataSync()));
      tf.dispose([...Object.values(sd), ...Object.values(back), x, y]);
      lin.dispose();
    });

    for (const [label, cin, cout, k, stride, pad, groups] of [
      ['dense 3x3 s1 p1', 3, 4, 3, 1, 1, 1],
      ['dense 3x3 s2 p1 (odd size)', 2, 3, 3, 2, 1, 1],
      ['patchify 4x4 s4', 3, 5, 4, 4, 0, 1],
      ['1x1', 4, 2, 1, 1, 0, 1],
      ['depthwise 3x3 s1 p1', 3, 3, 3, 1, 1, 3],
      ['depthwise 7x7 s1 p3', 2, 2, 7, 1, 3, 2],
    ] as const) {
      it(`Conv2d ${label}: weight [out, in/groups, kh, kw] matches a direct convolution`, () => {
        manualSeed(11);
        const conv = new Conv2d(cin, cout, k, { stride, padding: pad, groups });
        const size = 9;
        const x = tf.randomNormal([2, size, size, cin], 0, 1, 'float32', 2);
        const w = tf.randomNormal([cout, cin / groups, k, k], 0, 1, 'float32', 3);
        const b = tf.randomNormal([cout], 0, 1, 'float32', 4);
        conv.loadStateDict({ weight: w, bias: b });
        const y = conv.forward(x);
        const ref = directConv(
          x.arraySync() as number[][][][],
          w.arraySync() as number[][][][],
          b.arraySync() as number[],
          stride,
          pad,
          groups,
        );
        expect(maxDiff(y, ref)).toBeLessThan(1e-4);
        const sd = conv.stateDict();
        expect(sd.weight.shape).toEqual([cout, cin / groups, k, k]);
        expect(Array.from(sd.weight.dataSync())).toEqual(Array.from(w.dataSync()));
        tf.dispose([x, w, b, y, ...Object.values(sd)]);
        conv.dispose();
      });
    }

    it('LayerNorm: biased variance, explicit eps', () => {
      const ln = new LayerNorm(4, 1e-6);
      const x = tf.tensor2d([[1, 2, 3, 4]]);
      const y = ln.forward(x);
      const mean = 2.5;
      const v = (1.5 ** 2 + 0.5 ** 2 + 0.5 ** 2 + 1.5 ** 2) / 4;
      expect(maxDiff(y, [[1, 2, 3, 4].map((a) => (a - mean) / Math.sqrt(v + 1e-6))])).toBeLessThan(1e-5);
      tf.dispose([x, y]);
      ln.dispose();
    });

    it('two models of the same config coexist (no variable-name collisions) and dispose cleanly', () => {
      const before = tf.memory().numTensors;
      const cfg = { imgSize: 32, patchSize: 4, embedDim: 8, depths: [1, 1], numHeads: [1, 2], windowSize: 4, numClasses: 2 };
      const a = swin(cfg);
      const b = swin(cfg);
      const names = new Set([...a.trainableVariables(), ...b.trainableVariables()].map((v) => v.name));
      expect(names.size).toBe(a.trainableVariables().length * 2);
      a.dispose();
      b.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
