import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { Module } from '../../src/layers/module.js';
import { mvitRelPosIndex, PoolingAttention, PoolingAttentionOptions } from '../../src/layers/poolingAttention.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare } from '../helpers/fixtures.js';

/** Give every parameter random values (PyTorch layouts), so no weight is trivially 0 or 1. */
function randomize(m: Module, seed: number): void {
  const sd: Record<string, tf.Tensor> = {};
  m.namedParameters().forEach(([k, p], i) => (sd[k] = tf.randomNormal(p.torchShape, 0, 0.4, 'float32', seed + i)));
  m.loadStateDict(sd);
  tf.dispose(Object.values(sd));
}

type Arr = Float32Array;
/** A `[rows, cols]` matrix of doubles. */
type Mat = number[][];

/**
 * MViTv2 pooling attention written out from its definition (Li et al. 2022, sec. 3.1-3.2), one
 * sample and one head at a time: fused qkv projection; per-head pooling of the spatial tokens
 * (depthwise k x k conv with zero padding k // 2, or max pooling) with the class token kept aside;
 * LayerNorm over the head dimension; logits `q.k / sqrt(hd)` plus, between spatial tokens,
 * `q . Rh[dist_h] + q . Rw[dist_w]` with `dist = i * max(k/q, 1) - j * max(q/k, 1) + (k - 1) * max(q/k, 1)`;
 * softmax; `+ q` (residual pooling); output projection.
 */
function directPoolingAttention(x: Arr, b: number, o: PoolingAttentionOptions, sd: Record<string, Arr>): { y: Float64Array; nq: number } {
  const {
    dim,
    dimOut,
    numHeads: heads,
    featSize: [H, W],
  } = o;
  const hd = dimOut / heads;
  const cls = o.hasClsToken ? 1 : 0;
  const n = H * W + cls;
  const mode = o.mode ?? 'conv';
  const pool = (t: Mat, kernel: number, stride: number, wname: string, nname: string): { t: Mat; size: [number, number] } => {
    if (kernel === 1 && stride === 1) return { t, size: [H, W] };
    const pad = Math.floor(kernel / 2);
    const oh = Math.floor((H + 2 * pad - kernel) / stride) + 1;
    const ow = Math.floor((W + 2 * pad - kernel) / stride) + 1;
    const out: Mat = cls ? [t[0].slice()] : [];
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const v = new Array(hd).fill(mode === 'max' ? -Infinity : 0);
        for (let ky = 0; ky < kernel; ky++) {
          for (let kx = 0; kx < kernel; kx++) {
            const iy = oy * stride - pad + ky;
            const ix = ox * stride - pad + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (let d = 0; d < hd; d++) {
              const val = t[cls + iy * W + ix][d];
              if (mode === 'max') v[d] = Math.max(v[d], val);
              else v[d] += val * sd[wname][(d * kernel + ky) * kernel + kx]; // weight [hd, 1, k, k]
            }
          }
        }
        out.push(v);
      }
    }
    if (mode === 'conv') {
      for (const row of out) {
        const m = row.reduce((a, c) => a + c, 0) / hd;
        const va = row.reduce((a, c) => a + (c - m) ** 2, 0) / hd;
        for (let d = 0; d < hd; d++)
          row[d] = ((row[d] - m) / Math.sqrt(va + (o.normEps ?? 1e-6))) * sd[`${nname}.weight`][d] + sd[`${nname}.bias`][d];
      }
    }
    return { t: out, size: [oh, ow] };
  };
  const [kq, sq] = [o.kernelQ?.[0] ?? 1, o.strideQ?.[0] ?? 1];
  const [kkv, skv] = [o.kernelKv?.[0] ?? 1, o.strideKv?.[0] ?? 1];
  let nq = 0;
  let y = new Float64Array(0);
  for (let bi = 0; bi < b; bi++) {
    const merged: Mat = [];
    for (let h = 0; h < heads; h++) {
      const part = (which: number): Mat =>
        Array.from({ length: n }, (_, t) =>
          Array.from({ length: hd }, (_, d) => {
            const oc = which * dimOut + h * hd + d;
            let s = sd['qkv.bias'][oc];
            for (let i = 0; i < dim; i++) s += x[(bi * n + t) * dim + i] * sd['qkv.weight'][oc * dim + i];
            return s;
          }),
        );
      const q = pool(part(0), kq, sq, 'pool_q.weight', 'norm_q');
      const k = pool(part(1), kkv, skv, 'pool_k.weight', 'norm_k');
      const v = pool(part(2), kkv, skv, 'pool_v.weight', 'norm_v');
      nq = q.t.length;
      const [qh, qw] = q.size;
      const [kh, kw] = k.size;
      q.t.forEach((qi, i) => {
        const logits = k.t.map((kj, j) => {
          let s = qi.reduce((a, c, d) => a + c * kj[d], 0) / Math.sqrt(hd);
          if (o.relPosType === 'spatial' && i >= cls && j >= cls) {
            const [iy, ix] = [Math.floor((i - cls) / qw), (i - cls) % qw];
            const [jy, jx] = [Math.floor((j - cls) / kw), (j - cls) % kw];
            const dist = (a: number, c: number, ql: number, kl: number) =>
              Math.floor(a * Math.max(kl / ql, 1) - c * Math.max(ql / kl, 1) + (kl - 1) * Math.max(ql / kl, 1));
            const dh = dist(iy, jy, qh, kh);
            const dw = dist(ix, jx, qw, kw);
            for (let d = 0; d < hd; d++) s += qi[d] * (sd.rel_pos_h[dh * hd + d] + sd.rel_pos_w[dw * hd + d]);
          }
          return s;
        });
        const mx = Math.max(...logits);
        const e = logits.map((l) => Math.exp(l - mx));
        const z = e.reduce((a, c) => a + c, 0);
        merged[i] ??= [];
        for (let d = 0; d < hd; d++) {
          let s = e.reduce((a, c, j) => a + (c / z) * v.t[j][d], 0);
          if (o.residualPooling ?? true) s += qi[d];
          merged[i][h * hd + d] = s;
        }
      });
    }
    if (bi === 0) y = new Float64Array(b * nq * dimOut);
    merged.forEach((row, i) => {
      for (let oc = 0; oc < dimOut; oc++) {
        let s = sd['proj.bias'][oc];
        for (let d = 0; d < dimOut; d++) s += row[d] * sd['proj.weight'][oc * dimOut + d];
        y[(bi * nq + i) * dimOut + oc] = s;
      }
    });
  }
  return { y, nq };
}

const base = { kernelQ: [3, 3] as [number, number], kernelKv: [3, 3] as [number, number], relPosType: 'spatial' };
const CASES: { name: string; b: number; opts: PoolingAttentionOptions }[] = [
  {
    name: 'q stride 1, kv stride 4 (stage-0 pattern), 1 head',
    b: 2,
    opts: { ...base, dim: 4, dimOut: 4, numHeads: 1, featSize: [8, 8], strideQ: [1, 1], strideKv: [4, 4] },
  },
  {
    name: 'q stride 2, kv stride 1, width 4 -> 8, 2 heads',
    b: 2,
    opts: { ...base, dim: 4, dimOut: 8, numHeads: 2, featSize: [6, 6], strideQ: [2, 2], strideKv: [1, 1] },
  },
  {
    name: 'q stride 2, kv stride 3 (non-integer grid ratio 3:2)',
    b: 1,
    opts: { ...base, dim: 4, dimOut: 4, numHeads: 1, featSize: [6, 6], strideQ: [2, 2], strideKv: [3, 3] },
  },
  {
    name: 'q stride 2, kv stride 2, class token',
    b: 2,
    opts: { ...base, dim: 6, dimOut: 6, numHeads: 2, featSize: [4, 4], strideQ: [2, 2], strideKv: [2, 2], hasClsToken: true },
  },
  {
    name: 'class token, no residual pooling, no rel pos',
    b: 1,
    opts: {
      ...base,
      dim: 4,
      dimOut: 4,
      numHeads: 2,
      featSize: [4, 4],
      strideQ: [1, 1],
      strideKv: [2, 2],
      hasClsToken: true,
      residualPooling: false,
      relPosType: '',
    },
  },
  {
    name: "max pooling mode ('max'), rel pos",
    b: 1,
    opts: { ...base, dim: 4, dimOut: 4, numHeads: 1, featSize: [4, 4], strideQ: [2, 2], strideKv: [1, 1], mode: 'max' },
  },
];

for (const backend of BACKENDS) {
  describe(`PoolingAttention on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const { name, b, opts } of CASES) {
      it(`${name}: matches the loop computation`, () => {
        const m = new PoolingAttention(opts);
        randomize(m, 200);
        const sdT = m.stateDict();
        const sd = Object.fromEntries(Object.entries(sdT).map(([k, v]) => [k, v.dataSync() as Float32Array]));
        const n = opts.featSize[0] * opts.featSize[1] + (opts.hasClsToken ? 1 : 0);
        const x = tf.randomNormal([b, n, opts.dim], 0, 1, 'float32', 9);
        const before = tf.memory().numTensors;
        const y = m.forward(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        const ref = directPoolingAttention(x.dataSync() as Float32Array, b, opts, sd);
        expect(y.shape).toEqual([b, ref.nq, opts.dimOut]);
        expect(ref.nq).toBe(m.qSize[0] * m.qSize[1] + (opts.hasClsToken ? 1 : 0));
        const refT = tf.tensor(Float32Array.from(ref.y), y.shape);
        const r = compare(y, refT, 1e-5, 1e-4);
        expect(r.worstExcess, `max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        tf.dispose([x, y, refT, ...Object.values(sdT)]);
        m.dispose();
      });
    }

    it('relative-position index tables follow cal_rel_pos_type for equal and different q/k grids', () => {
      // equal sizes: i - j + (k - 1)
      expect(Array.from(mvitRelPosIndex(3, 3))).toEqual([2, 1, 0, 3, 2, 1, 4, 3, 2]);
      // coarse q (2) vs fine k (4): q scaled by 2
      expect(Array.from(mvitRelPosIndex(2, 4))).toEqual([3, 2, 1, 0, 5, 4, 3, 2]);
      // fine q (4) vs coarse k (2): k scaled by 2, offset (k - 1) * 2
      expect(Array.from(mvitRelPosIndex(4, 2))).toEqual([2, 0, 3, 1, 4, 2, 5, 3]);
      // the rel_pos table of an MViTv2-T stage-0 block: 2 * 56 - 1 rows; offsets reach 55 + 13 * 4 = 107
      const m = new PoolingAttention({ ...base, dim: 8, dimOut: 8, numHeads: 1, featSize: [56, 56], strideQ: [1, 1], strideKv: [4, 4] });
      expect(m.relPosH!.variable.shape).toEqual([111, 8]);
      expect(Math.max(...mvitRelPosIndex(56, 14))).toBe(107);
      m.dispose();
    });

    it('rejects bad configs and token counts with clear errors', () => {
      const ok: PoolingAttentionOptions = { ...base, dim: 8, dimOut: 8, numHeads: 2, featSize: [4, 4], strideQ: [1, 1], strideKv: [2, 2] };
      expect(() => new PoolingAttention({ ...ok, numHeads: 3 })).toThrow(/numHeads 3 does not divide the attention width 8/);
      expect(() => new PoolingAttention({ ...ok, featSize: [4, 6] })).toThrow(
        /spatial relative positions need a square token grid, got 4x6/,
      );
      expect(() => new PoolingAttention({ ...ok, strideQ: [1, 2] })).toThrow(/only square pooling is supported/);
      expect(() => new PoolingAttention({ ...ok, mode: 'lp' as 'max' })).toThrow(/pooling mode 'lp' is not supported/);
      const m = new PoolingAttention(ok);
      const x = tf.zeros([1, 17, 8]);
      expect(() => m.forward(x)).toThrow(VisBackbonesError);
      expect(() => m.forward(x)).toThrow(/expected 16 tokens \(4x4 grid\), got 17/);
      x.dispose();
      m.dispose();
    });
  });
}
