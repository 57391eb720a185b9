import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, normal } from '../../src/layers/init.js';
import { LePE } from '../../src/layers/lepe.js';
import { windowPartition } from '../../src/layers/windows.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/**
 * Depthwise 3x3 conv with zero padding on each window separately (CSWin eq. 5's DWConv(V)), loops over
 * `[N, wh, ww, C]` windows; `w` in the torch layout `[C, 1, 3, 3]`.
 */
function lepeLoops(v: Float32Array, [n, wh, ww, c]: number[], w: Float32Array, bias: Float32Array): Float64Array {
  const y = new Float64Array(v.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < wh; i++)
      for (let j = 0; j < ww; j++)
        for (let ch = 0; ch < c; ch++) {
          let s = bias[ch];
          for (let di = -1; di <= 1; di++)
            for (let dj = -1; dj <= 1; dj++) {
              const ii = i + di;
              const jj = j + dj;
              if (ii < 0 || ii >= wh || jj < 0 || jj >= ww) continue;
              s += w[ch * 9 + (di + 1) * 3 + (dj + 1)] * v[((b * wh + ii) * ww + jj) * c + ch];
            }
          y[((b * wh + i) * ww + j) * c + ch] = s;
        }
  return y;
}

for (const backend of BACKENDS) {
  describe(`LePE on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('equals a per-window depthwise 3x3 conv computed with loops (zero padding at window borders)', () => {
      manualSeed(11);
      const c = 5;
      const lepe = new LePE(c);
      const w = normal([c, 1, 3, 3], 0.5);
      const bias = normal([c], 0.1);
      lepe.loadStateDict({ weight: w, bias });
      // a 6x8 map cut into 4 vertical stripes of 6x2, as windows [B * nW, wh * ww, C]
      const map = normal([2, 6, 8, c], 1);
      const wins = windowPartition(map, 6, 2); // [2 * 4, 12, C]
      const before = tf.memory().numTensors;
      const tok = lepe.forwardWindows(wins, 6, 2);
      const win4 = wins.reshape([8, 6, 2, c]);
      const img = lepe.forward(win4);
      const ref = lepeLoops(wins.dataSync() as Float32Array, [8, 6, 2, c], w.dataSync() as Float32Array, bias.dataSync() as Float32Array);
      const e1 = maxAbsDiff(tok.dataSync(), ref);
      const e2 = maxAbsDiff(img.dataSync(), ref);
      console.log(`LePE [${backend}] max abs err ${e1}`);
      expect(e1).toBeLessThan(1e-5);
      expect(e2).toBeLessThan(1e-5);
      expect(tok.shape).toEqual([8, 12, c]);
      tf.dispose([tok, img, win4]);
      expect(tf.memory().numTensors).toBe(before);
      // windows do not see each other: the same conv on the whole map differs at stripe borders
      const whole = lepe.forward(map);
      const wholeWins = windowPartition(whole, 6, 2);
      const tok2 = lepe.forwardWindows(wins, 6, 2);
      expect(maxAbsDiff(wholeWins.dataSync(), tok2.dataSync())).toBeGreaterThan(1e-2);
      tf.dispose([whole, wholeWins, tok2, map, wins, w, bias]);
      lepe.dispose();
    });

    it('keeps the official get_v state dict (weight [C, 1, 3, 3] and bias [C])', () => {
      const lepe = new LePE(6);
      const sd = lepe.stateDict();
      expect(Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, v.shape]))).toEqual({ weight: [6, 1, 3, 3], bias: [6] });
      tf.dispose(Object.values(sd));
      const bad = tf.zeros([2, 5, 6]);
      expect(() => lepe.forwardWindows(bad, 2, 3)).toThrow(/window tokens/);
      bad.dispose();
      lepe.dispose();
    });
  });
}
