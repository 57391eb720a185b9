import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resizeMatrix2d } from '../../src/layers/interpolate.js';
import { LayerScale } from '../../src/layers/layerScale.js';
import { prependTokens, resampleAbsPosEmbed, resamplePatchEmbed } from '../../src/layers/posEmbed.js';
import { swin } from '../../src/models/swin/swinTransformer.js';
import { vit } from '../../src/models/vit/visionTransformer.js';
import { pinv } from '../../src/utils/pinv.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

/*
 * timm's resample_abs_pos_embed = F.interpolate(grid, size, mode='bicubic', antialias=True) on the grid
 * tokens, prefix tokens kept. PyTorch's antialiased bicubic (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
 * as Pillow): Keys kernel a = -0.5 centred at c = (o + 0.5) * in / out, support 2 * max(in / out, 1),
 * taps [trunc(c - support + 0.5), trunc(c + support + 0.5)) cut to the input, weights
 * k((i + 0.5 - c) / max(in / out, 1)) normalised to sum 1.
 */
function keysHalf(d: number): number {
  d = Math.abs(d);
  const a = -0.5;
  if (d <= 1) return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1;
  if (d < 2) return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a;
  return 0;
}
function aaBicubicTaps(o: number, n: number, m: number): [number, number][] {
  const s = n / m;
  const support = 2 * Math.max(s, 1);
  const c = (o + 0.5) * s;
  const taps: [number, number][] = [];
  for (let i = Math.max(0, Math.trunc(c - support + 0.5)); i < Math.min(n, Math.trunc(c + support + 0.5)); i++)
    taps.push([i, keysHalf((i + 0.5 - c) / Math.max(s, 1))]);
  const total = taps.reduce((acc, [, w]) => acc + w, 0);
  return taps.map(([i, w]) => [i, w / total]);
}

/** A fixed, deliberately non-polynomial position embedding: prefix row, then an h x w grid of C channels. */
function fixedPosEmbed(h: number, w: number, c: number): number[][] {
  const rows: number[][] = [Array.from({ length: c }, (_, k) => 0.25 * (k + 1))];
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++)
      rows.push(Array.from({ length: c }, (_, k) => Math.cos(0.9 * i + 0.4 * k) + 0.5 * Math.sin(1.3 * j - k) + 0.1 * i * j));
  return rows;
}

/** Expected resampled embedding computed from the formula, as [1 + H*W][C]. */
function expectedResample(rows: number[][], [h, w]: [number, number], [nh, nw]: [number, number]): number[][] {
  const c = rows[0].length;
  const out: number[][] = [rows[0].slice()];
  for (let a = 0; a < nh; a++) {
    for (let b = 0; b < nw; b++) {
      const v = new Array(c).fill(0);
      for (const [i, wy] of aaBicubicTaps(a, h, nh))
        for (const [j, wx] of aaBicubicTaps(b, w, nw)) for (let k = 0; k < c; k++) v[k] += wy * wx * rows[1 + i * w + j][k];
      out.push(v);
    }
  }
  return out;
}

const TINY = { patchSize: 8, embedDim: 4, depth: 1, numHeads: 2, numClasses: 3 };

for (const backend of BACKENDS) {
  describe(`position / patch embedding resampling on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    for (const [name, dst] of [
      ['upsampling 4x4 -> 6x6 (img 32 -> 48)', [48, 48]],
      ['downsampling 4x4 -> 3x3 (img 32 -> 24)', [24, 24]],
      ['mixed 4x4 -> 2x5 (img 32 -> 16x40)', [16, 40]],
    ] as const) {
      it(`loading a 32 px ViT checkpoint into another image size resamples pos_embed: ${name}`, () => {
        const src = vit({ ...TINY, imgSize: 32 });
        const rows = fixedPosEmbed(4, 4, 4);
        const sd = src.stateDict();
        sd.pos_embed.dispose();
        sd.pos_embed = tf.tensor3d([rows]);
        const model = vit({ ...TINY, imgSize: [dst[0], dst[1]] });
        const before = tf.memory().numTensors;
        const res = loadTimmWeights(model, sd);
        expect(tf.memory().numTensors).toBe(before);
        expect(res.loaded.length).toBe(Object.keys(sd).length);
        const got = model.stateDict();
        const grid: [number, number] = [dst[0] / 8, dst[1] / 8];
        expect(got.pos_embed.shape).toEqual([1, 1 + grid[0] * grid[1], 4]);
        const exp = expectedResample(rows, [4, 4], grid).flat();
        expect(maxAbsDiff(got.pos_embed.dataSync(), exp)).toBeLessThan(2e-6);
        // the class-token row is kept exactly, and the other weights load unchanged
        expect(Array.from(got.pos_embed.dataSync().slice(0, 4))).toEqual(Array.from(Float32Array.from(rows[0])));
        expect(maxAbsDiff(got['blocks.0.attn.qkv.weight'].dataSync(), sd['blocks.0.attn.qkv.weight'].dataSync())).toBe(0);
        tf.dispose([...Object.values(sd), ...Object.values(got)]);
        src.dispose();
        model.dispose();
      });
    }

    it('a 2x2 position grid loaded into a 1x1 model becomes the mean of the four (antialiased bicubic, symmetric taps)', () => {
      const src = vit({ ...TINY, imgSize: 16 });
      const sd = src.stateDict();
      sd.pos_embed.dispose();
      sd.pos_embed = tf.tensor3d([
        [
          [7, 7, 7, 7],
          [1, 2, 3, 4],
          [5, 6, 7, 8],
          [0, 0, 1, 1],
          [2, -2, 4, 3],
        ],
      ]);
      const model = vit({ ...TINY, imgSize: 8 });
      loadTimmWeights(model, sd);
      const got = model.stateDict();
      expect(maxAbsDiff(got.pos_embed.dataSync(), [7, 7, 7, 7, 2, 1.5, 3.75, 4])).toBeLessThan(1e-6);
      tf.dispose([...Object.values(sd), ...Object.values(got)]);
      src.dispose();
      model.dispose();
    });

    it('resampleAbsPosEmbed keeps several prefix tokens and is differentiable', () => {
      const pos = tf.randomNormal([1, 2 + 9, 3], 0, 1, 'float32', 11);
      const before = tf.memory().numTensors;
      const r = resampleAbsPosEmbed(pos, [5, 4], { numPrefixTokens: 2 });
      expect(r.shape).toEqual([1, 2 + 20, 3]);
      expect(tf.tidy(() => maxAbsDiff(r.slice([0, 0, 0], [1, 2, 3]).dataSync(), pos.slice([0, 0, 0], [1, 2, 3]).dataSync()))).toBe(0);
      const g = tf.grad((p: tf.Tensor) => tf.sum(resampleAbsPosEmbed(p, [5, 4], { numPrefixTokens: 2 })))(pos);
      // each input grid token's gradient is the sum of its weights over the outputs
      expect(g.shape).toEqual(pos.shape);
      expect(tf.tidy(() => tf.sum(g.slice([0, 2, 0], [1, 9, 1])).dataSync()[0])).toBeCloseTo(20, 4);
      tf.dispose([r, g]);
      expect(tf.memory().numTensors).toBe(before);
      pos.dispose();
    });

    it('resamplePatchEmbed 4 -> 8 (upsampling): a patch resized with the same bicubic gives the same token (FlexiViT PI-resize)', () => {
      const w = tf.randomNormal([5, 3, 4, 4], 0, 1, 'float32', 21);
      const wNew = resamplePatchEmbed(w, [8, 8]);
      expect(wNew.shape).toEqual([5, 3, 8, 8]);
      const r = resizeMatrix2d([4, 4], [8, 8], { mode: 'bicubic', antialias: true }); // [64, 16]
      const x = tf.randomNormal([3, 16], 0, 1, 'float32', 22).arraySync() as number[][];
      const xUp = x.map((row) => Array.from({ length: 64 }, (_, n) => row.reduce((s, v, k) => s + r[n * 16 + k] * v, 0)));
      const wo = w.reshape([5, 3, 16]).arraySync() as number[][][];
      const wn = wNew.reshape([5, 3, 64]).arraySync() as number[][][];
      for (let o = 0; o < 5; o++) {
        let old = 0;
        let neu = 0;
        for (let c = 0; c < 3; c++) {
          for (let k = 0; k < 16; k++) old += wo[o][c][k] * x[c][k];
          for (let k = 0; k < 64; k++) neu += wn[o][c][k] * xUp[c][k];
        }
        expect(Math.abs(neu - old)).toBeLessThan(1e-4 * Math.max(1, Math.abs(old)));
      }
      tf.dispose([w, wNew]);
    });

    it('resamplePatchEmbed 8 -> 4 (downsampling) is the least-squares solution: R (R^T w_new - w_old) = 0', () => {
      const w = tf.randomNormal([2, 1, 8, 8], 0, 1, 'float32', 31);
      const wNew = resamplePatchEmbed(w, [4, 4]);
      const r = resizeMatrix2d([8, 8], [4, 4], { mode: 'bicubic', antialias: true }); // [16, 64]
      const wo = w.reshape([2, 64]).arraySync() as number[][];
      const wn = wNew.reshape([2, 16]).arraySync() as number[][];
      for (let o = 0; o < 2; o++) {
        const resid = Array.from({ length: 64 }, (_, k) => wn[o].reduce((s, v, n) => s + r[n * 64 + k] * v, 0) - wo[o][k]);
        for (let n = 0; n < 16; n++) expect(Math.abs(resid.reduce((s, v, k) => s + r[n * 64 + k] * v, 0))).toBeLessThan(1e-4);
      }
      tf.dispose([w, wNew]);
    });

    it('a patch-16 ViT checkpoint loads into a patch-8 model with the kernel resampled', () => {
      const src = vit({ ...TINY, imgSize: 32, patchSize: 16 });
      const model = vit({ ...TINY, imgSize: 16, patchSize: 8 }); // same 2x2 grid
      const sd = src.stateDict();
      loadTimmWeights(model, sd);
      const got = model.stateDict();
      const exp = resamplePatchEmbed(sd['patch_embed.proj.weight'], [8, 8]);
      expect(got['patch_embed.proj.weight'].shape).toEqual([4, 3, 8, 8]);
      expect(maxAbsDiff(got['patch_embed.proj.weight'].dataSync(), exp.dataSync())).toBe(0);
      tf.dispose([...Object.values(sd), ...Object.values(got), exp]);
      src.dispose();
      model.dispose();
    });

    it("Swin's checkpoint filter resamples a patch-4 kernel for a patch-2 model (timm: bicubic, antialias)", () => {
      const arch = { embedDim: 8, depths: [1], numHeads: [2], windowSize: 4, numClasses: 3 };
      const src = swin({ ...arch, imgSize: 32, patchSize: 4 });
      const model = swin({ ...arch, imgSize: 16, patchSize: 2 }); // same 8x8 grid
      const sd = src.stateDict();
      const before = tf.memory().numTensors;
      const res = loadTimmWeights(model, sd);
      expect(tf.memory().numTensors).toBe(before);
      expect(res.loaded.length).toBe(Object.keys(sd).length);
      const got = model.stateDict();
      const exp = resamplePatchEmbed(sd['patch_embed.proj.weight'], [2, 2]);
      expect(got['patch_embed.proj.weight'].shape).toEqual([8, 3, 2, 2]);
      expect(maxAbsDiff(got['patch_embed.proj.weight'].dataSync(), exp.dataSync())).toBe(0);
      tf.dispose([...Object.values(sd), ...Object.values(got), exp]);
      src.dispose();
      model.dispose();
    });

    it('prependTokens puts the class token first for every batch element; LayerScale scales channels', () => {
      const x = tf.ones([3, 2, 4]);
      const cls = tf.tensor3d([[[1, 2, 3, 4]]]);
      const y = prependTokens(x, [cls]);
      expect(y.shape).toEqual([3, 3, 4]);
      expect((y.arraySync() as number[][][])[2][0]).toEqual([1, 2, 3, 4]);
      const ls = new LayerScale(4, 0.5);
      const z = ls.forward(x);
      expect(Array.from(z.dataSync().slice(0, 4))).toEqual([0.5, 0.5, 0.5, 0.5]);
      expect(Object.keys(ls.stateDict())).toEqual(['gamma']);
      tf.dispose([x, cls, y, z, ...Object.values(ls.stateDict())]);
      ls.dispose();
    });
  });
}

describe('pseudo-inverse and errors', () => {
  it('pinv of a rank-2 5x4 matrix satisfies the four Moore-Penrose conditions', () => {
    const b = [
      [1, 2],
      [0, 1],
      [3, -1],
      [2, 2],
      [-1, 0.5],
    ];
    const c = [
      [1, 0, 2, -1],
      [0.5, 1, 1, 3],
    ];
    const a = b.flatMap((row) => c[0].map((_, j) => row[0] * c[0][j] + row[1] * c[1][j]));
    const p = pinv(a, 5, 4); // [4, 5]
    const mul = (x: ArrayLike<number>, y: ArrayLike<number>, m: number, k: number, n: number) =>
      Array.from({ length: m * n }, (_, idx) => {
        const i = Math.floor(idx / n);
        const j = idx % n;
        let s = 0;
        for (let t = 0; t < k; t++) s += x[i * k + t] * y[t * n + j];
        return s;
      });
    const tr = (x: number[], m: number, n: number) => Array.from({ length: m * n }, (_, idx) => x[(idx % m) * n + Math.floor(idx / m)]);
    const ap = mul(a, p, 5, 4, 5);
    const pa = mul(p, a, 4, 5, 4);
    expect(maxAbsDiff(mul(ap, a, 5, 5, 4), a)).toBeLessThan(1e-10);
    expect(maxAbsDiff(mul(pa, p, 4, 4, 5), p)).toBeLessThan(1e-10);
    expect(maxAbsDiff(tr(ap, 5, 5), ap)).toBeLessThan(1e-10);
    expect(maxAbsDiff(tr(pa, 4, 4), pa)).toBeLessThan(1e-10);
  });

  it('rejects embeddings that cannot be resampled', () => {
    const pos = tf.zeros([1, 1 + 6, 2]);
    expect(() => resampleAbsPosEmbed(pos, [3, 3])).toThrow(/not a square grid: pass oldSize/);
    expect(() => resampleAbsPosEmbed(pos, [3, 3], { oldSize: [2, 2] })).toThrow(/does not match the 6 grid tokens/);
    expect(() => resamplePatchEmbed(tf.zeros([2, 2]), [4, 4])).toThrow(/\[out, in, kh, kw\]/);
    pos.dispose();
  });
});
