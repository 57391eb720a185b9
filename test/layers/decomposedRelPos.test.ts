import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { addDecomposedRelPos, getRelPos, relPosLookupMatrix } from '../../src/layers/decomposedRelPos.js';
import { windowPartitionPadded, windowUnpartitionPadded } from '../../src/layers/paddedWindows.js';
import { RelPosAttention } from '../../src/layers/relPosAttention.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/*
 * Direct computations of SAM / timm `get_rel_pos` and `add_decomposed_rel_pos`
 * (timm/models/vision_transformer_sam.py), written as loops.
 */

/** F.interpolate(mode='linear', align_corners=False) of a [L, C] table (rows) to n rows. */
function linearResizeRows(table: number[][], n: number): number[][] {
  const l = table.length;
  const out: number[][] = [];
  for (let o = 0; o < n; o++) {
    const x = Math.max((o + 0.5) * (l / n) - 0.5, 0);
    const x0 = Math.floor(x);
    const x1 = Math.min(x0 + 1, l - 1);
    const t = x - x0;
    out.push(table[x0].map((v, c) => (1 - t) * v + t * table[x1][c]));
  }
  return out;
}

/** get_rel_pos(q, k, table) -> [q][k][C]. */
function directGetRelPos(q: number, k: number, table: number[][]): number[][][] {
  const maxRel = 2 * Math.max(q, k) - 1;
  const t = table.length === maxRel ? table : linearResizeRows(table, maxRel);
  const rq = Math.max(k / q, 1);
  const rk = Math.max(q / k, 1);
  const out: number[][][] = [];
  for (let i = 0; i < q; i++) {
    const row: number[][] = [];
    for (let j = 0; j < k; j++) row.push(t[Math.trunc(i * rq - j * rk + (k - 1) * rk)]);
    out.push(row);
  }
  return out;
}

const randTable = (l: number, c: number, seed: number) =>
  tf.tidy(() => tf.randomNormal([l, c], 0, 1, 'float32', seed).arraySync() as number[][]);

describe('relative position lookup', () => {
  it('q = k = 4 with a 7-row table: row (i, j) selects entry i - j + 3', () => {
    const m = relPosLookupMatrix(4, 4, 7);
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        for (let t = 0; t < 7; t++) expect(m[(i * 4 + j) * 7 + t]).toBe(t === i - j + 3 ? 1 : 0);
      }
    }
  });
});

for (const backend of BACKENDS) {
  describe(`decomposed relative position on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const [q, k, l] of [
      [4, 4, 7], // table of the right length: a pure lookup
      [6, 6, 7], // table of a 4-grid used on a 6-grid: linearly resized to 11 rows
      [8, 8, 15],
      [2, 4, 7], // query and key sizes differ: coordinates scaled as in SAM
      [5, 3, 9],
    ] as const) {
      it(`getRelPos q=${q} k=${k} table=${l} matches get_rel_pos`, () => {
        const table = randTable(l, 3, q * 10 + k);
        const t = tf.tensor2d(table);
        const before = tf.memory().numTensors;
        const r = getRelPos(q, k, t);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(r.shape).toEqual([q, k, 3]);
        expect(maxAbsDiff(r.dataSync(), directGetRelPos(q, k, table).flat(2))).toBeLessThan(1e-6);
        tf.dispose([t, r]);
      });
    }

    it('addDecomposedRelPos matches the einsum formula (2 x 3 query grid, 3 x 2 key grid, 4 batches)', () => {
      const [qh, qw, kh, kw, b, c] = [2, 3, 3, 2, 4, 5];
      const attn = tf.randomNormal([b, qh * qw, kh * kw], 0, 1, 'float32', 1);
      const q = tf.randomNormal([b, qh * qw, c], 0, 1, 'float32', 2);
      const rh = tf.randomNormal([qh, kh, c], 0, 1, 'float32', 3);
      const rw = tf.randomNormal([qw, kw, c], 0, 1, 'float32', 4);
      const before = tf.memory().numTensors;
      const out = addDecomposedRelPos(attn, q, rh, rw, [qh, qw], [kh, kw]);
      expect(tf.memory().numTensors).toBe(before + 1);
      const [a, qa, rha, rwa] = [
        attn.arraySync() as number[][][],
        q.arraySync() as number[][][],
        rh.arraySync() as number[][][],
        rw.arraySync() as number[][][],
      ];
      const exp: number[] = [];
      for (let n = 0; n < b; n++) {
        for (let y = 0; y < qh; y++) {
          for (let x = 0; x < qw; x++) {
            for (let ky = 0; ky < kh; ky++) {
              for (let kx = 0; kx < kw; kx++) {
                let relH = 0;
                let relW = 0;
                for (let ch = 0; ch < c; ch++) {
                  relH += qa[n][y * qw + x][ch] * rha[y][ky][ch];
                  relW += qa[n][y * qw + x][ch] * rwa[x][kx][ch];
                }
                exp.push(a[n][y * qw + x][ky * kw + kx] + relH + relW);
              }
            }
          }
        }
      }
      expect(maxAbsDiff(out.dataSync(), exp)).toBeLessThan(1e-5);
      tf.dispose([attn, q, rh, rw, out]);
    });

    it('gradients reach both tables through RelPosAttention, also on a grid other than the tables were built for', () => {
      const attn = new RelPosAttention({ dim: 8, numHeads: 2, useRelPos: true, inputSize: [4, 4] });
      // non-zero tables so the check is not trivially about zero init
      const tables = { rel_pos_h: tf.randomNormal([7, 4], 0, 0.3, 'float32', 5), rel_pos_w: tf.randomNormal([7, 4], 0, 0.3, 'float32', 6) };
      attn.loadStateDict(tables, { strict: false });
      tf.dispose(Object.values(tables));
      for (const size of [4, 6]) {
        const x = tf.randomNormal([2, size, size, 8], 0, 1, 'float32', size);
        const before = tf.memory().numTensors;
        const { grads, value } = tf.variableGrads(
          () => tf.sum(tf.square(attn.forward(x))) as tf.Scalar,
          [attn.relPosH!.variable, attn.relPosW!.variable],
        );
        for (const g of Object.values(grads)) expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])).toBeGreaterThan(0);
        tf.dispose([value, ...Object.values(grads)]);
        expect(tf.memory().numTensors).toBe(before);
        x.dispose();
      }
      attn.dispose();
    });

    it('padded window partition: zero padding to a multiple of the window, and the inverse crops it', () => {
      const x = tf.randomNormal([2, 5, 7, 3], 0, 1, 'float32', 9);
      const { windows, padded } = windowPartitionPadded(x, 4);
      expect(padded).toEqual([8, 8]);
      expect(windows.shape).toEqual([2 * 4, 4, 4, 3]);
      // window (1, 1) of image 0 holds rows 4..7, cols 4..7: row 4 cols 4..6 are data, the rest padding
      const w = windows.arraySync() as number[][][][];
      const xa = x.arraySync() as number[][][][];
      expect(w[3][0][0]).toEqual(xa[0][4][4].map((v) => expect.closeTo(v, 6)));
      expect(w[3][1][0]).toEqual([0, 0, 0]);
      expect(w[3][0][3]).toEqual([0, 0, 0]);
      const back = windowUnpartitionPadded(windows, 4, [5, 7], padded);
      expect(maxAbsDiff(back.dataSync(), x.dataSync())).toBe(0);
      tf.dispose([x, windows, back]);
    });
  });
}
