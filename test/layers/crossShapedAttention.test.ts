import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { CrossShapedAttention, stripeShape } from '../../src/layers/crossShapedAttention.js';
import { manualSeed, normal } from '../../src/layers/init.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

type Arr = ArrayLike<number>;

/**
 * CSWin attention (sec. 3.2-3.3) written as loops over an NHWC map `[B, H, W, C]`, from the definition:
 * y_tok = x_tok Wqkv^T + b (q = [0, C), k = [C, 2C), v = [2C, 3C)); branch `r` takes channels
 * [r*C/nb, (r+1)*C/nb) of q, k and v and its own heads (channel = head * hd + d); each token attends to the
 * tokens of its own stripe (branch 0: the same column block of width s, all rows; branch 1: the same
 * row block of height s, all columns; full: every token), plus LePE = bias + 3x3 depthwise conv of v
 * over the tokens of the same stripe; the branch outputs are concatenated and projected.
 */
function cswinAttnLoops(
  x: Arr,
  [b, h, w, c]: number[],
  heads: number,
  s: number,
  full: boolean,
  wqkv: Arr,
  bqkv: Arr,
  wproj: Arr,
  bproj: Arr,
  getV: { w: Arr; b: Arr }[],
): Float64Array {
  const n = h * w;
  const qkv = new Float64Array(b * n * 3 * c);
  for (let t = 0; t < b * n; t++)
    for (let o = 0; o < 3 * c; o++) {
      let acc = bqkv[o];
      for (let i = 0; i < c; i++) acc += x[t * c + i] * wqkv[o * c + i];
      qkv[t * 3 * c + o] = acc;
    }
  const nb = full ? 1 : 2;
  const cb = c / nb;
  const hb = heads / nb;
  const hd = cb / hb;
  const scale = hd ** -0.5;
  const att = new Float64Array(b * n * c);
  // stripe id of a position for branch r (tokens attend within the same id)
  const stripe = (r: number, i: number, j: number) => (full ? 0 : r === 0 ? Math.floor(j / s) : Math.floor(i / s));
  for (let bi = 0; bi < b; bi++)
    for (let r = 0; r < nb; r++) {
      const q = (t: number, ch: number) => qkv[(bi * n + t) * 3 * c + r * cb + ch];
      const k = (t: number, ch: number) => qkv[(bi * n + t) * 3 * c + c + r * cb + ch];
      const v = (t: number, ch: number) => qkv[(bi * n + t) * 3 * c + 2 * c + r * cb + ch];
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          const t = i * w + j;
          const mates: number[] = [];
          for (let i2 = 0; i2 < h; i2++) for (let j2 = 0; j2 < w; j2++) if (stripe(r, i2, j2) === stripe(r, i, j)) mates.push(i2 * w + j2);
          for (let hh = 0; hh < hb; hh++) {
            const logits = mates.map((u) => {
              let d = 0;
              for (let e = 0; e < hd; e++) d += q(t, hh * hd + e) * scale * k(u, hh * hd + e);
              return d;
            });
            const mx = Math.max(...logits);
            const ex = logits.map((l) => Math.exp(l - mx));
            const z = ex.reduce((a2, v2) => a2 + v2, 0);
            for (let e = 0; e < hd; e++) {
              let o = 0;
              mates.forEach((u, m) => (o += (ex[m] / z) * v(u, hh * hd + e)));
              att[(bi * n + t) * c + r * cb + hh * hd + e] = o;
            }
          }
          // LePE: 3x3 depthwise conv of v over neighbours in the same stripe
          for (let ch = 0; ch < cb; ch++) {
            let l = getV[r].b[ch];
            for (let di = -1; di <= 1; di++)
              for (let dj = -1; dj <= 1; dj++) {
                const i2 = i + di;
                const j2 = j + dj;
                if (i2 < 0 || i2 >= h || j2 < 0 || j2 >= w || stripe(r, i2, j2) !== stripe(r, i, j)) continue;
                l += getV[r].w[ch * 9 + (di + 1) * 3 + (dj + 1)] * v(i2 * w + j2, ch);
              }
            att[(bi * n + t) * c + r * cb + ch] += l;
          }
        }
    }
  const y = new Float64Array(b * n * c);
  for (let t = 0; t < b * n; t++)
    for (let o = 0; o < c; o++) {
      let acc = bproj[o];
      for (let i = 0; i < c; i++) acc += att[t * c + i] * wproj[o * c + i];
      y[t * c + o] = acc;
    }
  return y;
}

/** Random state in the torch layouts, loaded into the module. */
function randomize(attn: CrossShapedAttention): Record<string, tf.Tensor> {
  const sd: Record<string, tf.Tensor> = {};
  for (const [k, p] of attn.namedParameters()) sd[k] = normal(p.torchShape, k.endsWith('bias') ? 0.2 : 0.6);
  attn.loadStateDict(sd);
  return sd;
}

const CASES = [
  { name: 'stripes (split 2) on a 4x6 map', dim: 8, heads: 4, res: [4, 6] as [number, number], split: 2, full: false, branches: 2 },
  {
    name: 'stripes of width 1 (one head per branch)',
    dim: 6,
    heads: 2,
    res: [3, 3] as [number, number],
    split: 1,
    full: false,
    branches: 2,
  },
  { name: 'last-stage full attention', dim: 8, heads: 2, res: [2, 3] as [number, number], split: 1, full: true, branches: 1 },
  {
    name: 'map equal to the split size: one full branch',
    dim: 8,
    heads: 4,
    res: [3, 3] as [number, number],
    split: 3,
    full: false,
    branches: 1,
  },
];

for (const backend of BACKENDS) {
  describe(`CrossShapedAttention on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const [ci, c] of CASES.entries()) {
      it(`${c.name}: equals the loop computation`, () => {
        manualSeed(40 + ci);
        const attn = new CrossShapedAttention({
          dim: c.dim,
          numHeads: c.heads,
          resolution: c.res,
          splitSize: c.split,
          fullAttention: c.full,
        });
        expect(attn.branches).toBe(c.branches);
        expect(attn.attns.length).toBe(c.branches);
        const sd = randomize(attn);
        const shape = [2, c.res[0], c.res[1], c.dim];
        const x = normal(shape, 1);
        const before = tf.memory().numTensors;
        const y = attn.forward(x);
        expect(y.shape).toEqual(shape);
        const d = (k: string) => sd[k].dataSync();
        const getV = Array.from({ length: c.branches }, (_, r) => ({ w: d(`attns.${r}.get_v.weight`), b: d(`attns.${r}.get_v.bias`) }));
        const ref = cswinAttnLoops(
          x.dataSync(),
          shape,
          c.heads,
          c.split,
          c.branches === 1,
          d('qkv.weight'),
          d('qkv.bias'),
          d('proj.weight'),
          d('proj.bias'),
          getV,
        );
        const err = maxAbsDiff(y.dataSync(), ref);
        console.log(`${c.name} [${backend}] max abs err ${err}`);
        expect(err).toBeLessThan(2e-5);
        y.dispose();
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([x, ...Object.values(sd)]);
        attn.dispose();
      });
    }

    it('names its state as the official block does', () => {
      const attn = new CrossShapedAttention({ dim: 8, numHeads: 2, resolution: 4, splitSize: 2 });
      const sd = attn.stateDict();
      const shapes = Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, v.shape]));
      expect(shapes).toEqual({
        'qkv.weight': [24, 8],
        'qkv.bias': [24],
        'proj.weight': [8, 8],
        'proj.bias': [8],
        'attns.0.get_v.weight': [4, 1, 3, 3],
        'attns.0.get_v.bias': [4],
        'attns.1.get_v.weight': [4, 1, 3, 3],
        'attns.1.get_v.bias': [4],
      });
      tf.dispose(Object.values(sd));
      attn.dispose();
    });
  });
}

describe('CrossShapedAttention errors and stripe shapes', () => {
  it('stripe shapes follow the official H_sp / W_sp', () => {
    expect(stripeShape('vertical', [8, 6], 2)).toEqual([8, 2]);
    expect(stripeShape('horizontal', [8, 6], 2)).toEqual([2, 6]);
    expect(stripeShape('full', [8, 6], 2)).toEqual([8, 6]);
  });
  it('rejects heads that do not split between the two stripe directions', () => {
    expect(() => new CrossShapedAttention({ dim: 12, numHeads: 3, resolution: 4, splitSize: 2 })).toThrow(VisBackbonesError);
    expect(() => new CrossShapedAttention({ dim: 12, numHeads: 3, resolution: 4, splitSize: 2 })).toThrow(
      /numHeads 3 cannot be split evenly/,
    );
  });
  it('rejects a splitSize that does not divide the map', () => {
    expect(() => new CrossShapedAttention({ dim: 8, numHeads: 2, resolution: [6, 6], splitSize: 4 })).toThrow(
      /splitSize 4 does not divide the 6x6 token map/,
    );
  });
  it('rejects an input of the wrong size', () => {
    const attn = new CrossShapedAttention({ dim: 8, numHeads: 2, resolution: 4, splitSize: 2 });
    const x = tf.zeros([1, 4, 6, 8]);
    expect(() => attn.forward(x)).toThrow(/expects NHWC \[B, 4, 4, 8\], got shape \[1, 4, 6, 8\]/);
    x.dispose();
    attn.dispose();
  });
});
