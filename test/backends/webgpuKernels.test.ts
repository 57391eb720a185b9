/**
 * Our WGSL kernels for tfjs's 'webgpu' backend (src/backends/webgpu) against the cpu backend, on odd
 * shapes, in plain Node with Dawn (the `webgpu` package, unpacked by `bash gpu/pack.sh` into
 * .gpu-cache/webgpu, or WEBGPU_MODULE). Without a GPU it runs on Mesa's lavapipe
 * (`eval "$(bash gpu/lavapipe.sh)"`). Where the package or an adapter is missing (CI) the whole suite
 * is skipped, and its title says why.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setupDawnWebgpu } from '../../gpu/dawn.js';
import { fusedAttentionCore, fusedAttentionQkv, fusedDwConvLayerNorm } from '../../src/backends/fusedAttention.js';
import { fusedBiasMaskSoftmax } from '../../src/backends/fusedSoftmax.js';
import { fusedLayerNormResidual, fusedLinearGelu, fusedLinearResidual, fusedScaledResidual } from '../../src/backends/fusedLinear.js';
import { countDispatches } from '../../src/backends/webgpu/dispatchCounter.js';
import {
  registerWebgpuKernels,
  unregisterWebgpuKernels,
  WEBGPU_KERNEL_NAMES,
  webgpuKernelRegistered,
} from '../../src/backends/webgpu/kernels.js';
import { gelu } from '../../src/layers/activations.js';
import { addBiasAndMask, biasMaskSoftmax, l2Normalize, mergeHeads, splitQkv } from '../../src/layers/attention.js';
import { shiftedWindowPartition, shiftedWindowReverse } from '../../src/layers/windows.js';
import { Conv2d } from '../../src/layers/conv2d.js';
import { ConvNeXtBlock } from '../../src/layers/convNextBlock.js';
import { GlobalResponseNorm } from '../../src/layers/grn.js';
import { LayerNorm } from '../../src/layers/norm.js';
import { Linear, linearAdd, linearGelu } from '../../src/layers/linear.js';
import { Mlp } from '../../src/layers/mlp.js';
import { FAMILIES } from '../helpers/families.js';
import { diff, erf64, randn } from './kernelTestUtils.js';

const setup = await setupDawnWebgpu();
const title = setup.ok ? `webgpu kernels on ${setup.adapter}` : `webgpu kernels: SKIPPED (${setup.reason})`;

/** Values of `f()` on `backend` (read back asynchronously: webgpu's dataSync needs OffscreenCanvas); no tensor left. */
async function valuesOn(backend: 'cpu' | 'webgpu', f: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const outs = tf.tidy(f);
  const list = Array.isArray(outs) ? outs : [outs];
  const vals = await Promise.all(list.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(list);
  expect(tf.memory().numTensors, `tensors left on ${backend}`).toBe(before);
  return vals;
}

const t = (shape: number[], seed: number, scale = 1) =>
  tf.tensor(
    randn(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
    shape,
  );

/** Each output of `f` with our kernels on webgpu vs the composed formulas on cpu. */
async function expectClose(f: () => tf.Tensor | tf.Tensor[], atol: number, rtol: number): Promise<void> {
  const want = await valuesOn('cpu', f);
  registerWebgpuKernels();
  const got = await valuesOn('webgpu', f);
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const d = diff(got[i], want[i], atol, rtol);
    expect(d.worst, `output ${i}: max abs err ${d.maxAbs}`).toBeLessThanOrEqual(0);
  }
}

describe.skipIf(!setup.ok)(title, () => {
  beforeAll(() => registerWebgpuKernels());
  // build every module and constant on cpu: a tensor moves cpu -> webgpu, but webgpu -> cpu needs a sync read (OffscreenCanvas)
  beforeEach(() => tf.setBackend('cpu'));
  afterAll(async () => {
    unregisterWebgpuKernels();
    await tf.setBackend('cpu');
  });

  it('registers for webgpu only, and unregisters', async () => {
    registerWebgpuKernels();
    for (const name of WEBGPU_KERNEL_NAMES) {
      expect(webgpuKernelRegistered(name), name).toBe(true);
      expect(tf.getKernel(name, 'cpu'), `${name} on cpu`).toBeUndefined();
    }
    unregisterWebgpuKernels();
    for (const name of WEBGPU_KERNEL_NAMES) expect(tf.getKernel(name, 'webgpu'), name).toBeUndefined();
    registerWebgpuKernels();
  });

  it('LayerNorm in one dispatch, odd widths (9, 37, 130, 771), = cpu', async () => {
    for (const [shape, seed] of [
      [[3, 5, 37], 1],
      [[2, 7, 3, 9], 2],
      [[11, 130], 3],
      [[5, 771], 4],
    ] as Array<[number[], number]>) {
      const c = shape[shape.length - 1];
      const ln = new LayerNorm(c, 1e-6);
      tf.tidy(() => {
        ln.weight!.value.assign(t([c], seed + 10, 0.5).add(1));
        ln.bias!.value.assign(t([c], seed + 20, 0.1));
      });
      await expectClose(() => ln.forward(t(shape, seed, 3).add(0.5)), 2e-5, 2e-5);
      await tf.setBackend('webgpu');
      const x = t(shape, seed);
      const n = countDispatches(() => ln.forward(x));
      expect(n.dispatches, JSON.stringify(n.byProgram)).toBe(1);
      expect(n.byProgram.VbLayerNormProgram).toBe(1);
      tf.dispose([x, n.result]);
      ln.dispose();
    }
  });

  it('r + LayerNorm(x) in one dispatch, = cpu, and its gradients', async () => {
    const [w, b] = [t([45], 5, 0.3).add(1), t([45], 6, 0.2)];
    const f = () => {
      const x = t([3, 7, 45], 7, 2);
      const r = t([3, 7, 45], 8);
      const y = fusedLayerNormResidual(x, w, b, 1e-5, r) ?? tf.add(r, composedLn(x, w, b, 1e-5));
      const dy = t([3, 7, 45], 9);
      const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
        tf.sum(tf.mul(fusedLayerNormResidual(xx, ww, bb, 1e-5, rr) ?? tf.add(rr, composedLn(xx, ww, bb, 1e-5)), dy)),
      )([x, w, b, r]);
      return [y, ...g];
    };
    await expectClose(f, 5e-5, 5e-5);
    await tf.setBackend('webgpu');
    const x = t([3, 7, 45], 7);
    const n = countDispatches(() => fusedLayerNormResidual(x, w, b, 1e-5, x));
    expect(n.dispatches).toBe(1);
    tf.dispose([x, n.result!, w, b]);
  });

  it('exact GELU in one dispatch (scalar and vec4 sizes) = float64 reference and cpu', async () => {
    for (const shape of [[1001], [4, 33, 8]]) {
      const f = () => gelu(t(shape, 11, 4));
      await expectClose(f, 2e-6, 2e-6);
      const x = randn(
        shape.reduce((a, b) => a * b, 1),
        11,
        4,
      );
      const [got] = await valuesOn('webgpu', f);
      const ref = Float32Array.from(x, (v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)));
      const d = diff(got, ref, 1e-6, 1e-6);
      expect(d.worst, `max abs err ${d.maxAbs}`).toBeLessThanOrEqual(0);
      const xt = t(shape, 11);
      const n = countDispatches(() => gelu(xt));
      expect(n.dispatches).toBe(1);
      tf.dispose([xt, n.result]);
    }
  });

  it('gelu(x W + b) as the matmul with a GELU epilogue: one dispatch, = cpu, gradients = cpu', async () => {
    for (const [rows, k, n] of [
      [37, 19, 45],
      [197, 64, 96],
      [1, 384, 1536],
    ]) {
      const f = () => {
        const x = t([rows, k], rows, 1);
        const w = t([k, n], k, 0.2);
        const b = t([n], n, 0.5);
        const y = fusedLinearGelu(x as tf.Tensor2D, w as tf.Tensor2D, b) ?? gelu(tf.add(tf.matMul(x, w), b));
        return [y];
      };
      await expectClose(f, 1e-4, 1e-4);
    }
    // through the layers: Mlp's fc1 + GELU
    const mlp = new Mlp(24, { hiddenFeatures: 40 });
    await expectClose(() => mlp.forward(t([2, 13, 24], 3)), 1e-4, 1e-4);
    const g = () => {
      const x = t([13, 24], 4);
      const dy = t([13, 40], 5);
      const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(fusedLinearGelu(xx as tf.Tensor2D, ww as tf.Tensor2D, bb) ?? gelu(tf.add(tf.matMul(xx, ww), bb)), dy));
      return tf.grads(loss)([x, t([24, 40], 7, 0.2), t([40], 8)]);
    };
    await expectClose(g, 2e-4, 2e-4);
    await tf.setBackend('cpu');
    const fc = new Linear(24, 40);
    await tf.setBackend('webgpu');
    const x = t([13, 24], 6);
    const c = countDispatches(() => linearGelu(fc, x));
    expect(c.dispatches, JSON.stringify(c.byProgram)).toBe(1);
    tf.dispose([x, c.result!]);
    fc.dispose();
    mlp.dispose();
  });

  it("window attention's softmax(logits + bias + mask) in one dispatch, = cpu (9- and 49-token windows)", async () => {
    for (const [b, nW, heads, n] of [
      [2, 3, 4, 9],
      [1, 4, 3, 49],
    ]) {
      const g = b * nW * heads;
      const mask = () => tf.tidy(() => tf.mul(tf.cast(tf.greater(t([nW, n, n], 31), 0.5), 'float32'), -100));
      for (const parts of ['bias+mask', 'bias', 'mask'] as const) {
        const f = () => {
          const attn = t([g, n, n], 30, 2);
          const bias = parts === 'mask' ? null : t([heads, n, n], 32);
          const m = parts === 'bias' ? null : mask();
          return biasMaskSoftmax(attn, bias, m, heads);
        };
        await expectClose(f, 2e-6, 2e-5);
      }
      // the composition it replaces, and one dispatch
      await expectClose(
        () => {
          const attn = t([g, n, n], 40);
          const bias = t([heads, n, n], 41);
          const m = mask();
          return [fusedBiasMaskSoftmax(attn, bias, m, heads) ?? tf.softmax(addBiasAndMask(attn, bias, m, heads)), m];
        },
        2e-6,
        2e-5,
      );
      await tf.setBackend('webgpu');
      const [attn, bias, m] = [t([g, n, n], 40), t([heads, n, n], 41), mask()];
      const c = countDispatches(() => biasMaskSoftmax(attn, bias, m, heads));
      expect(c.dispatches, JSON.stringify(c.byProgram)).toBe(1);
      tf.dispose([attn, bias, m, c.result]);
    }
  });

  it('the attention core softmax(s q k^T + bias + mask) v in one dispatch, plain and cosine, = cpu; not while taping', async () => {
    const cases: Array<{ groups: number; heads: number; n: number; hd: number; cosine: boolean; bias: boolean; nW: number }> = [
      { groups: 6, heads: 2, n: 9, hd: 5, cosine: true, bias: true, nW: 3 },
      { groups: 2, heads: 3, n: 13, hd: 7, cosine: false, bias: false, nW: 0 },
      { groups: 1, heads: 2, n: 197, hd: 64, cosine: false, bias: false, nW: 0 },
      { groups: 4, heads: 3, n: 64, hd: 32, cosine: true, bias: true, nW: 0 },
    ];
    for (const c of cases) {
      const g = c.groups * c.heads;
      const make = () => ({
        q: t([g, c.n, c.hd], 70),
        k: t([g, c.n, c.hd], 71),
        v: t([g, c.n, c.hd], 72),
        ls: t([c.heads, 1, 1], 73, 1).add(2.5), // some above log(100): the clamp
        bias: c.bias ? t([c.heads, c.n, c.n], 74) : null,
        mask: c.nW ? tf.mul(tf.cast(tf.greater(t([c.nW, c.n, c.n], 75), 0.5), 'float32'), -100) : null,
      });
      const composed = (x: ReturnType<typeof make>) => {
        let logits: tf.Tensor;
        if (c.cosine) {
          logits = tf.matMul(l2Normalize(x.q), l2Normalize(x.k), false, true);
          logits = tf.mul(logits.reshape([g / c.heads, c.heads, c.n, c.n]), tf.exp(tf.minimum(x.ls, Math.log(100)))).reshape([g, c.n, c.n]);
        } else logits = tf.matMul(tf.mul(x.q, c.hd ** -0.5), x.k, false, true);
        return tf.matMul(biasMaskSoftmax(logits, x.bias, x.mask, c.heads), x.v);
      };
      const f = () => {
        const x = make();
        const opts = { heads: c.heads, logitScale: c.cosine ? x.ls : null, bias: x.bias, mask: x.mask };
        return fusedAttentionCore(x.q, x.k, x.v, opts) ?? composed(x);
      };
      await expectClose(f, 2e-5, 2e-4);
      await tf.setBackend('webgpu');
      const x = make();
      const opts = { heads: c.heads, logitScale: c.cosine ? x.ls : null, bias: x.bias, mask: x.mask };
      const n = countDispatches(() => fusedAttentionCore(x.q, x.k, x.v, opts));
      expect(n.dispatches, JSON.stringify(n.byProgram)).toBe(1);
      // while a gradient is recorded the fused core (which has none) steps aside
      let inside: tf.Tensor | null | undefined;
      const gq = tf.grad((q: tf.Tensor) => {
        inside = fusedAttentionCore(q, x.k, x.v, opts);
        return tf.sum(composed({ ...x, q }));
      })(x.q);
      expect(inside).toBeNull();
      tf.dispose([n.result!, gq, ...Object.values(x).filter((u): u is tf.Tensor => u !== null)]);
    }
  });

  it('the attention core from a fused qkv projection to merged heads in one dispatch, = cpu', async () => {
    for (const c of [
      { b: 6, n: 9, heads: 2, hd: 5, cosine: true, nW: 3 },
      { b: 2, n: 197, heads: 3, hd: 16, cosine: false, nW: 0 },
    ]) {
      const make = () => ({
        qkv: t([c.b * c.n, 3 * c.heads * c.hd], 80),
        ls: t([c.heads, 1, 1], 81).add(2.5),
        bias: c.cosine ? t([c.heads, c.n, c.n], 82) : null,
        mask: c.nW ? tf.mul(tf.cast(tf.greater(t([c.nW, c.n, c.n], 83), 0.5), 'float32'), -100) : null,
      });
      const f = () => {
        const x = make();
        const opts = { heads: c.heads, logitScale: c.cosine ? x.ls : null, bias: x.bias, mask: x.mask };
        const fused = fusedAttentionQkv(x.qkv, c.b, c.n, opts);
        if (fused) return fused;
        const [q, k, v] = splitQkv(x.qkv, c.b, c.n, c.heads);
        return mergeHeads(fusedAttentionCore(q, k, v, opts) ?? composedCore(q, k, v, c.heads, opts), c.b, c.heads);
      };
      await expectClose(f, 2e-5, 2e-4);
      await tf.setBackend('webgpu');
      const x = make();
      const n = countDispatches(() =>
        fusedAttentionQkv(x.qkv, c.b, c.n, { heads: c.heads, logitScale: c.cosine ? x.ls : null, bias: x.bias, mask: x.mask }),
      );
      expect(n.dispatches).toBe(1);
      expect(n.result!.shape).toEqual([c.b, c.n, c.heads * c.hd]);
      tf.dispose([n.result!, ...Object.values(x).filter((u): u is tf.Tensor => u !== null)]);
    }
  });

  it("Swin's shift + window partition and merge + shift back as one copy each (C 6 and 8), = cpu, gradients = cpu", async () => {
    for (const c of [6, 8]) {
      const [h, w, wh, ww, sh, sw] = [12, 8, 4, 4, 2, 3];
      const f = () => {
        const x = t([2, h, w, c], 90);
        const win = shiftedWindowPartition(x, wh, ww, sh, sw);
        const back = shiftedWindowReverse(win, wh, ww, h, w, sh, sw);
        const dy = t(win.shape, 91);
        const gx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(shiftedWindowPartition(xx, wh, ww, sh, sw), dy)))(x);
        const gw = tf.grad((ww2: tf.Tensor) => tf.sum(tf.mul(shiftedWindowReverse(ww2, wh, ww, h, w, sh, sw), x)))(win);
        return [win, back, tf.sub(back, x), gx, gw];
      };
      await expectClose(f, 0, 0);
      await tf.setBackend('webgpu');
      const x = t([2, h, w, c], 92);
      const p = countDispatches(() => shiftedWindowPartition(x, wh, ww, sh, sw));
      const r = countDispatches(() => shiftedWindowReverse(p.result, wh, ww, h, w, sh, sw));
      expect([p.dispatches, r.dispatches]).toEqual([1, 1]);
      tf.dispose([x, p.result, r.result]);
    }
  });

  it('ConvNeXt V2 GRN (NHWC) in two dispatches, = cpu (C 37 and 160)', async () => {
    for (const shape of [
      [2, 5, 7, 37],
      [1, 9, 9, 160],
    ]) {
      const c = shape[3];
      const grn = new GlobalResponseNorm(c);
      tf.tidy(() => {
        grn.weight.value.assign(t([c], 100, 0.5));
        grn.bias.value.assign(t([c], 101, 0.2));
      });
      await expectClose(() => grn.forward(t(shape, 102, 2)), 1e-5, 1e-5);
      await tf.setBackend('webgpu');
      const x = t(shape, 103);
      const n = countDispatches(() => grn.forward(x));
      expect(n.dispatches, JSON.stringify(n.byProgram)).toBe(2);
      tf.dispose([x, n.result]);
      grn.dispose();
    }
  });

  it('ConvNeXt depthwise conv + bias + LayerNorm in one dispatch, = cpu (odd C, k 7/3/5, stride 2, dilation 2, no bias); not while taping', async () => {
    for (const [shape, k, o, seed] of [
      [[2, 9, 7, 37], 7, { padding: 3 }, 1],
      [[1, 6, 11, 130], 3, { padding: 1, stride: 2 }, 2],
      [[1, 13, 10, 9], 5, { padding: 4, dilation: 2, bias: false }, 3],
      [[1, 3, 4, 70], 7, { padding: 3 }, 4],
    ] as Array<[number[], number, { padding: number; stride?: number; dilation?: number; bias?: boolean }, number]>) {
      const c = shape[3];
      const conv = new Conv2d(c, c, k, { ...o, groups: c });
      const ln = new LayerNorm(c, 1e-6);
      tf.tidy(() => {
        conv.weight.value.assign(t(conv.weight.value.shape, seed + 10, 0.3));
        conv.bias?.value.assign(t([c], seed + 11, 0.5));
        ln.weight!.value.assign(t([c], seed + 12, 0.5).add(1));
        ln.bias!.value.assign(t([c], seed + 13, 0.1));
      });
      const geo = { stride: conv.stride, dilation: conv.dilation, padding: conv.padding };
      const f = (x: tf.Tensor) =>
        fusedDwConvLayerNorm(x, conv.weight.value, conv.bias?.value ?? null, geo, ln.weight!.value, ln.bias!.value, ln.eps) ??
        ln.forward(conv.forward(x));
      await expectClose(() => f(t(shape, seed, 2)), 5e-5, 5e-5);
      await tf.setBackend('webgpu');
      const x = t(shape, seed);
      const n = countDispatches(() => f(x));
      expect(n.dispatches, JSON.stringify(n.byProgram)).toBe(1);
      expect(n.byProgram.VbDwConvLayerNormProgram).toBe(1);
      expect(n.result.shape).toEqual([shape[0], conv.outSize(shape[1]), conv.outSize(shape[2]), c]);
      // no gradient: not used while a tape records
      tf.grads((xx: tf.Tensor) => {
        expect(fusedDwConvLayerNorm(xx, conv.weight.value, null, geo, ln.weight!.value, ln.bias!.value, ln.eps)).toBeNull();
        return tf.sum(xx);
      })([x]).forEach((g) => g.dispose());
      tf.dispose([x, n.result]);
      conv.dispose();
      ln.dispose();
    }
  });

  it('x W + b + r as the matmul with the residual in its epilogue: one dispatch, = cpu, gradients = cpu', async () => {
    for (const [rows, k, n] of [
      [37, 19, 45],
      [49, 1280, 320],
      [1, 384, 1536],
      [3, 7, 5],
    ]) {
      const f = () => {
        const x = t([rows, k], rows, 1);
        const w = t([k, n], k, 0.2);
        const b = t([n], n, 0.5);
        const r = t([rows, n], n + 1, 2);
        return [fusedLinearResidual(x as tf.Tensor2D, w as tf.Tensor2D, b, r as tf.Tensor2D) ?? tf.add(tf.add(tf.matMul(x, w), b), r)];
      };
      await expectClose(f, 1e-4, 1e-4);
    }
    const g = () => {
      const x = t([13, 24], 4);
      const dy = t([13, 40], 5);
      const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) =>
        tf.sum(
          tf.mul(
            fusedLinearResidual(xx as tf.Tensor2D, ww as tf.Tensor2D, bb, rr as tf.Tensor2D) ?? tf.add(tf.add(tf.matMul(xx, ww), bb), rr),
            dy,
          ),
        );
      return tf.grads(loss)([x, t([24, 40], 7, 0.2), t([40], 8), t([13, 40], 9)]);
    };
    await expectClose(g, 2e-4, 2e-4);
    // through the layer helper, on an NHWC map
    const fc = new Linear(24, 40);
    tf.tidy(() => fc.bias!.value.assign(t([40], 10, 0.5)));
    await expectClose(
      () => {
        const x = t([2, 3, 5, 24], 11);
        const r = t([2, 3, 5, 40], 12);
        return linearAdd(fc, x, r) ?? tf.add(fc.forward(x), r);
      },
      1e-4,
      1e-4,
    );
    await tf.setBackend('webgpu');
    const x = t([13, 24], 6);
    const r = t([13, 40], 7);
    const c = countDispatches(() => linearAdd(fc, x, r));
    expect(c.dispatches, JSON.stringify(c.byProgram)).toBe(1);
    expect(linearAdd(fc, x, t([13, 39], 8))).toBeNull(); // residual of another shape: the caller adds
    tf.dispose([x, r, c.result!]);
    fc.dispose();
  });

  it('ConvNeXt V2 block (GRN, no layer scale): five dispatches, = cpu; training gradients = cpu', async () => {
    const dim = 20;
    // built on cpu with non-zero GRN parameters (they start at zero: the identity); one block per comparison
    // (its variables move to webgpu, and back only by a synchronous read, which Node's webgpu lacks)
    const makeBlock = () => {
      const b = new ConvNeXtBlock({ dim, useGrn: true, lsInitValue: null });
      tf.tidy(() => {
        b.mlp.namedParameters().forEach(([, p], i) => p.value.assign(t(p.value.shape, 200 + i, 0.3)));
        b.norm.bias!.value.assign(t([dim], 210, 0.1));
      });
      return b;
    };
    const block = makeBlock();
    await expectClose(() => block.forward(t([2, 9, 11, dim], 211)), 1e-4, 1e-4);
    const trained = makeBlock();
    const g = () => {
      const x = t([1, 7, 5, dim], 212);
      const dy = t([1, 7, 5, dim], 213);
      const vars = trained.namedParameters().map(([, p]) => p.variable);
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(trained.forward(x, { training: true }), dy)) as tf.Scalar, vars);
      return [value, ...vars.map((v) => grads[v.name])];
    };
    await expectClose(g, 2e-4, 2e-4);
    trained.dispose();
    await tf.setBackend('webgpu');
    const x = t([1, 8, 8, dim], 214);
    const n = countDispatches(() => block.forward(x));
    expect(n.dispatches, JSON.stringify(n.byProgram)).toBe(5);
    tf.dispose([x, n.result]);
    block.dispose();
  });

  it('x + gamma * y in one dispatch, = cpu, and its gradients', async () => {
    const f = () => {
      const x = t([2, 5, 7, 33], 50);
      const y = t([2, 5, 7, 33], 51);
      const gamma = t([33], 52, 0.1);
      const dy = t([2, 5, 7, 33], 53);
      const fn = (xx: tf.Tensor, yy: tf.Tensor, gg: tf.Tensor) => fusedScaledResidual(xx, yy, gg) ?? tf.add(xx, tf.mul(yy, gg));
      return [fn(x, y, gamma), ...tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(fn(a, b, c), dy)))([x, y, gamma])];
    };
    await expectClose(f, 1e-5, 1e-5);
  });

  // the tiny configs of the families of the three bench models: logits with our kernels = cpu, fewer dispatches
  for (const name of ['swinv2', 'convnextv2', 'vit']) {
    it(`${name} (tiny, 64 px): logits = cpu, fewer dispatches with our kernels`, async () => {
      const fam = FAMILIES.find((f) => f.name === name)!;
      const model = fam.build(64, { numClasses: 10 });
      const f = () => model.forwardLogits(t([2, 64, 64, 3], 60));
      await expectClose(f, 1e-4, 1e-3);
      await tf.setBackend('webgpu');
      const x = t([2, 64, 64, 3], 60);
      const on = countDispatches(() => model.forwardLogits(x));
      unregisterWebgpuKernels();
      const off = countDispatches(() => model.forwardLogits(x));
      registerWebgpuKernels();
      await Promise.all([on.result.data(), off.result.data()]);
      expect(on.dispatches, `${on.dispatches} with ours, ${off.dispatches} without`).toBeLessThan(off.dispatches);
      tf.dispose([x, on.result, off.result]);
      model.dispose();
    });
  }
});

/** LayerNorm as the layer composes it on a backend without the fused kernel. */
function composedLn(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

/** The attention core as the layers compose it (plain or cosine). */
function composedCore(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  o: { logitScale: tf.Tensor | null; bias: tf.Tensor | null; mask: tf.Tensor | null },
): tf.Tensor {
  const [g, n, hd] = q.shape;
  let logits: tf.Tensor;
  if (o.logitScale) {
    logits = tf.matMul(l2Normalize(q), l2Normalize(k), false, true);
    logits = tf.mul(logits.reshape([g / heads, heads, n, n]), tf.exp(tf.minimum(o.logitScale, Math.log(100)))).reshape([g, n, n]);
  } else logits = tf.matMul(tf.mul(q, hd ** -0.5), k, false, true);
  return tf.matMul(biasMaskSoftmax(logits, o.bias, o.mask, heads), v);
}
