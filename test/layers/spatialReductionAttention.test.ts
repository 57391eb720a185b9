import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { Module } from '../../src/layers/module.js';
import { SpatialReductionAttention, SpatialReductionAttentionOptions } from '../../src/layers/spatialReductionAttention.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare } from '../helpers/fixtures.js';

/** Give every parameter random values (PyTorch layouts), so no weight is trivially 0 or 1. */
function randomize(m: Module, seed: number): void {
  const sd: Record<string, tf.Tensor> = {};
  m.namedParameters().forEach(([k, p], i) => (sd[k] = tf.randomNormal(p.torchShape, 0, 0.4, 'float32', seed + i)));
  m.loadStateDict(sd);
  tf.dispose(Object.values(sd));
}

/** erf by its Maclaurin series (|x| <= 5; exact to ~1e-9 in double precision), 1 beyond. */
function erf(x: number): number {
  if (Math.abs(x) > 5) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 120; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

type Arr = Float32Array;
/** y[r, o] = sum_i x[r, i] W[o, i] + b[o] with a PyTorch `[out, in]` weight. */
function linear(x: Arr, rows: number, w: Arr, b: Arr | null, nin: number, nout: number): Float64Array {
  const y = new Float64Array(rows * nout);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < nout; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < nin; i++) s += x[r * nin + i] * w[o * nin + i];
      y[r * nout + o] = s;
    }
  }
  return y;
}
function layerNorm(x: Float64Array, rows: number, c: number, g: Arr, b: Arr, eps: number): void {
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = 0; i < c; i++) m += x[r * c + i] / c;
    let v = 0;
    for (let i = 0; i < c; i++) v += (x[r * c + i] - m) ** 2 / c;
    for (let i = 0; i < c; i++) x[r * c + i] = ((x[r * c + i] - m) / Math.sqrt(v + eps)) * g[i] + b[i];
  }
}

/**
 * PVT v2's attention written out with loops from its definition: q from every token; keys/values
 * from `LN(Conv_{R,stride R}(x))` (or `GELU(LN(Conv1x1(AdaptiveAvgPool_7(x))))` for linear), then
 * per-head softmax attention and the output projection.
 */
function directSra(x: Arr, [b, h, w, c]: number[], o: SpatialReductionAttentionOptions, sd: Record<string, Arr>): Float64Array {
  const heads = o.numHeads;
  const hd = c / heads;
  const n = h * w;
  const out = new Float64Array(b * n * c);
  for (let bi = 0; bi < b; bi++) {
    const xb = x.subarray(bi * n * c, (bi + 1) * n * c);
    const q = linear(xb, n, sd['q.weight'], sd['q.bias'], c, c);
    // reduced source [m, c]
    let src: Float64Array;
    let m: number;
    if (o.linear) {
      const p = 7;
      const pooled = new Float32Array(p * p * c);
      for (let i = 0; i < p; i++) {
        for (let j = 0; j < p; j++) {
          const [y0, y1] = [Math.floor((i * h) / p), Math.ceil(((i + 1) * h) / p)];
          const [x0, x1] = [Math.floor((j * w) / p), Math.ceil(((j + 1) * w) / p)];
          for (let ch = 0; ch < c; ch++) {
            let s = 0;
            for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += xb[(yy * w + xx) * c + ch];
            pooled[(i * p + j) * c + ch] = s / ((y1 - y0) * (x1 - x0));
          }
        }
      }
      m = p * p;
      src = linear(pooled, m, sd['sr.weight'], sd['sr.bias'], c, c); // 1x1 conv [c, c, 1, 1]
      layerNorm(src, m, c, sd['norm.weight'], sd['norm.bias'], 1e-5);
      for (let i = 0; i < src.length; i++) src[i] = 0.5 * src[i] * (1 + erf(src[i] / Math.SQRT2));
    } else if ((o.srRatio ?? 1) > 1) {
      const r = o.srRatio!;
      const [gh, gw] = [h / r, w / r];
      m = gh * gw;
      src = new Float64Array(m * c);
      const wt = sd['sr.weight']; // [co, ci, r, r]
      for (let oy = 0; oy < gh; oy++) {
        for (let ox = 0; ox < gw; ox++) {
          for (let co = 0; co < c; co++) {
            let s = sd['sr.bias'][co];
            for (let ci = 0; ci < c; ci++) {
              for (let ky = 0; ky < r; ky++)
                for (let kx = 0; kx < r; kx++) s += xb[((oy * r + ky) * w + ox * r + kx) * c + ci] * wt[((co * c + ci) * r + ky) * r + kx];
            }
            src[(oy * gw + ox) * c + co] = s;
          }
        }
      }
      layerNorm(src, m, c, sd['norm.weight'], sd['norm.bias'], 1e-5);
    } else {
      m = n;
      src = Float64Array.from(xb);
    }
    const kv = linear(Float32Array.from(src), m, sd['kv.weight'], sd['kv.bias'], c, 2 * c);
    const attnOut = new Float32Array(n * c);
    for (let hh = 0; hh < heads; hh++) {
      for (let i = 0; i < n; i++) {
        const logits = new Float64Array(m);
        for (let j = 0; j < m; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[i * c + hh * hd + d] * kv[j * 2 * c + hh * hd + d];
          logits[j] = s / Math.sqrt(hd);
        }
        const mx = Math.max(...logits);
        let z = 0;
        for (let j = 0; j < m; j++) z += Math.exp(logits[j] - mx);
        for (let d = 0; d < hd; d++) {
          let s = 0;
          for (let j = 0; j < m; j++) s += (Math.exp(logits[j] - mx) / z) * kv[j * 2 * c + c + hh * hd + d];
          attnOut[i * c + hh * hd + d] = s;
        }
      }
    }
    out.set(linear(attnOut, n, sd['proj.weight'], sd['proj.bias'], c, c), bi * n * c);
  }
  return out;
}

const CASES: { name: string; shape: [number, number, number, number]; opts: SpatialReductionAttentionOptions }[] = [
  { name: 'srRatio 2, 2 heads', shape: [2, 4, 6, 8], opts: { dim: 8, numHeads: 2, srRatio: 2 } },
  { name: 'srRatio 4, 4 heads', shape: [1, 8, 8, 8], opts: { dim: 8, numHeads: 4, srRatio: 4 } },
  { name: 'srRatio 1 (no reduction)', shape: [2, 3, 3, 4], opts: { dim: 4, numHeads: 2, srRatio: 1 } },
  { name: 'linear (7x7 pooling of a 5x6 grid)', shape: [2, 5, 6, 8], opts: { dim: 8, numHeads: 2, linear: true } },
  { name: 'linear (7x7 pooling of a 10x9 grid)', shape: [1, 10, 9, 4], opts: { dim: 4, numHeads: 1, linear: true } },
];

for (const backend of BACKENDS) {
  describe(`SpatialReductionAttention on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const { name, shape, opts } of CASES) {
      it(`${name}: matches the loop computation`, () => {
        const m = new SpatialReductionAttention(opts);
        randomize(m, 100);
        const sdT = m.stateDict();
        const sd = Object.fromEntries(Object.entries(sdT).map(([k, v]) => [k, v.dataSync() as Float32Array]));
        const x = tf.randomNormal(shape, 0, 1, 'float32', 5);
        const before = tf.memory().numTensors;
        const y = m.forward(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(y.shape).toEqual(shape);
        const ref = tf.tensor(Float32Array.from(directSra(x.dataSync() as Float32Array, shape, opts, sd)), shape);
        const r = compare(y, ref, 1e-5, 1e-4);
        expect(r.worstExcess, `max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        expect(Object.keys(sd).sort()).toEqual(
          (opts.linear || (opts.srRatio ?? 1) > 1 ? ['kv', 'norm', 'proj', 'q', 'sr'] : ['kv', 'proj', 'q'])
            .flatMap((p) => [`${p}.bias`, `${p}.weight`])
            .sort(),
        );
        tf.dispose([x, y, ref, ...Object.values(sdT)]);
        m.dispose();
      });
    }

    it('rejects heads that do not divide the width and a grid that srRatio does not divide', () => {
      expect(() => new SpatialReductionAttention({ dim: 10, numHeads: 4 })).toThrow(/numHeads 4 does not divide the width 10/);
      const m = new SpatialReductionAttention({ dim: 8, numHeads: 2, srRatio: 4 });
      const x = tf.zeros([1, 6, 8, 8]);
      expect(() => m.forward(x)).toThrow(VisBackbonesError);
      expect(() => m.forward(x)).toThrow(/srRatio 4 does not divide the 6x8 token grid/);
      x.dispose();
      m.dispose();
    });
  });
}
