import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAST_KERNEL_NAMES, registerFastKernels } from '../../src/backends/fastKernels.js';
import { fusedGelu, fusedLayerNorm } from '../../src/backends/fusedOps.js';
import { gelu } from '../../src/layers/activations.js';
import { useBackend } from '../helpers/backends.js';
import { diff, erf64, on, randn } from './kernelTestUtils.js';

/**
 * Each of our wasm kernels against tfjs's cpu backend (its reference kernels) on random shapes,
 * odd sizes included; erf also against a float64 series.
 */

beforeAll(async () => {
  await useBackend('wasm');
  await registerFastKernels();
  for (const k of FAST_KERNEL_NAMES) expect(tf.getKernel(k, 'wasm'), k).toBeDefined();
});

/** Evaluate `f` on cpu and on wasm (with our kernels), checking wasm leaks no tensor. */
async function both(f: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const cpu = await on('cpu', f);
  await useBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = await on('wasm', f);
  expect(tf.memory().numTensors).toBe(before);
  return { cpu, wasm };
}

describe('BatchMatMul', () => {
  const cases: Array<{ a: number[]; b: number[]; ta?: boolean; tb?: boolean; why: string }> = [
    { a: [3, 5, 7], b: [3, 7, 9], why: 'batched, odd sizes' },
    { a: [2, 64, 32], b: [2, 64, 32], tb: true, why: 'window attention q k^T' },
    { a: [2, 64, 64], b: [2, 64, 32], why: 'window attention attn v' },
    { a: [4, 17, 13], b: [4, 11, 17], ta: true, tb: true, why: 'both transposed' },
    { a: [33, 20], b: [33, 19], ta: true, why: '2-D transposeA, small (own GEMM)' },
    { a: [2, 3, 5, 6], b: [6, 7], why: '4-D activation x 2-D weight (one GEMM on XNNPACK)' },
    { a: [4, 9, 8], b: [10, 8], tb: true, why: '3-D activation x transposed 2-D weight' },
    { a: [5, 6], b: [4, 6, 3], why: 'A broadcast over B batches' },
    { a: [2, 1, 4, 5], b: [3, 5, 2], why: 'general broadcast (handed back to tfjs-wasm)' },
    { a: [512, 96], b: [512, 100], ta: true, why: 'large 2-D transposeA (transpose + XNNPACK)' },
    { a: [200, 128], b: [170, 128], tb: true, why: 'large 2-D transposeB (transpose + XNNPACK)' },
    { a: [7, 1, 1], b: [7, 1, 1], tb: true, why: '1x1 products' },
    { a: [3, 0, 4], b: [3, 4, 5], why: 'empty' },
  ];
  for (const c of cases) {
    it(`${c.why}: [${c.a}]${c.ta ? 'T' : ''} x [${c.b}]${c.tb ? 'T' : ''}`, async () => {
      const av = randn(c.a.reduce((p, v) => p * v, 1), 1);
      const bv = randn(c.b.reduce((p, v) => p * v, 1), 2);
      const k = c.ta ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
      const { cpu, wasm } = await both(() => tf.matMul(tf.tensor(av, c.a), tf.tensor(bv, c.b), c.ta, c.tb));
      const d = diff(wasm[0], cpu[0], 2e-6 * Math.max(k, 1), 1e-5);
      expect(d.worst, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
    });
  }
});

describe('Erf', () => {
  const special = [0, -0, 1e-30, -1e-30, 1e-8, 0.5, 0.921875, -0.921875, 0.92187494, 3.92, -3.92, 3.9199998, 4, 10, -10, Infinity, -Infinity, NaN];
  const grid = Float32Array.from({ length: 20001 }, (_, i) => -6 + (12 * i) / 20000);
  const xs = Float32Array.from([...special, ...grid, ...randn(4097, 3, 2)]);
  it('is within 1.5e-7 absolute and 3 ulp of a float64 series on [-6, 6] and odd lengths', async () => {
    const [y] = await on('wasm', () => tf.erf(tf.tensor1d(xs)));
    let worstAbs = 0;
    let worstUlp = 0;
    for (let i = 0; i < xs.length; i++) {
      const e = erf64(xs[i]);
      if (e !== e) {
        expect(y[i]).toBeNaN();
        continue;
      }
      const d = Math.abs(y[i] - e);
      const ulp = Math.max(Math.abs(e), 1e-38) * 2 ** -23;
      worstAbs = Math.max(worstAbs, d);
      worstUlp = Math.max(worstUlp, d / ulp);
    }
    expect(worstAbs).toBeLessThan(1.5e-7);
    expect(worstUlp).toBeLessThan(3);
    for (const n of [1, 2, 3, 5, 7]) {
      const [cpu] = await on('cpu', () => tf.erf(tf.tensor1d(xs.slice(20, 20 + n))));
      const [w] = await on('wasm', () => tf.erf(tf.tensor1d(xs.slice(20, 20 + n))));
      expect(diff(w, cpu, 4e-7).worst).toBeLessThanOrEqual(0);
    }
  });
});

describe('fused GELU and LayerNorm', () => {
  it('GELU equals the composed formula on cpu (values and gradient)', async () => {
    for (const n of [1, 3, 4, 1001]) {
      const xv = randn(n, 4, 3);
      const cpu = await on('cpu', () => {
        const x = tf.tensor1d(xv);
        return [gelu(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), tf.range(0, n))))(x)];
      });
      const wasm = await on('wasm', () => {
        const x = tf.tensor1d(xv);
        const f = (t: tf.Tensor) => fusedGelu(t)!;
        return [f(x), tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), tf.range(0, n))))(x)];
      });
      expect(diff(wasm[0], cpu[0], 1e-6, 1e-6).worst).toBeLessThanOrEqual(0);
      expect(diff(wasm[1], cpu[1], 1e-5 * n, 1e-5).worst).toBeLessThanOrEqual(0);
    }
  });

  it('LayerNorm equals tf.moments-based LayerNorm on cpu (values and gradients) for odd widths', async () => {
    for (const [rows, c] of [[1, 1], [3, 3], [5, 8], [7, 96], [2, 97]]) {
      const xv = randn(rows * c, 5, 2);
      const wv = randn(c, 6);
      const bv = randn(c, 7);
      const eps = 1e-5;
      const ref = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
      };
      const r = randn(rows * c, 8);
      const run = (f: (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor) => () => {
        const x = tf.tensor2d(xv, [rows, c]);
        const w = tf.tensor1d(wv);
        const b = tf.tensor1d(bv);
        const loss = (a: tf.Tensor, bb: tf.Tensor, cc: tf.Tensor) => tf.sum(tf.mul(f(a, bb, cc), tf.tensor2d(r, [rows, c])));
        return [f(x, w, b), ...tf.grads(loss as (...t: tf.Tensor[]) => tf.Tensor)([x, w, b])];
      };
      const cpu = await on('cpu', run(ref));
      const wasm = await on('wasm', run((x, w, b) => fusedLayerNorm(x, w, b, eps)!));
      const names = ['y', 'dx', 'dw', 'db'];
      cpu.forEach((e, i) => {
        const d = diff(wasm[i], e, 2e-5, 1e-4);
        expect(d.worst, `${names[i]} rows ${rows} C ${c}: ${d.maxAbs}`).toBeLessThanOrEqual(0);
      });
    }
  });
});

type Pad = 'valid' | 'same' | number;
interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  out: number; // dense: output channels; depthwise: channel multiplier
  stride: number | [number, number];
  pad: Pad;
  dil?: number;
}

const DEPTHWISE: ConvCase[] = [
  { x: [2, 13, 11, 7], k: [3, 3], out: 1, stride: 1, pad: 'same' },
  { x: [1, 20, 19, 12], k: [7, 7], out: 1, stride: 1, pad: 3 },
  { x: [1, 16, 16, 8], k: [7, 7], out: 1, stride: 1, pad: 'valid' },
  { x: [2, 15, 12, 5], k: [3, 3], out: 1, stride: 2, pad: 1 },
  { x: [1, 12, 14, 9], k: [3, 5], out: 1, stride: [2, 1], pad: 'same' },
  { x: [1, 17, 15, 4], k: [3, 3], out: 1, stride: 1, pad: 'same', dil: 2 },
  { x: [1, 9, 9, 3], k: [3, 3], out: 2, stride: 1, pad: 'same' }, // multiplier 2: handed back
];

const DENSE: ConvCase[] = [
  { x: [2, 9, 10, 5], k: [3, 3], out: 6, stride: 1, pad: 'same' },
  { x: [1, 11, 13, 3], k: [3, 3], out: 10, stride: 2, pad: 'valid' },
  { x: [2, 8, 8, 16], k: [1, 1], out: 9, stride: 1, pad: 'valid' },
  { x: [1, 30, 30, 3], k: [7, 7], out: 8, stride: 4, pad: 3 },
  { x: [1, 10, 9, 7], k: [2, 4], out: 3, stride: [1, 2], pad: 'same' },
];

const kernelAttrs = (c: ConvCase) => ({
  strides: typeof c.stride === 'number' ? [c.stride, c.stride] : c.stride,
  pad: c.pad,
  dilations: [c.dil ?? 1, c.dil ?? 1],
  dimRoundingMode: undefined,
  dataFormat: 'NHWC',
});

describe('DepthwiseConv2dNative and its gradients', () => {
  for (const c of DEPTHWISE) {
    it(`x [${c.x}] k ${c.k} x${c.out} stride ${c.stride} pad ${c.pad} dil ${c.dil ?? 1}`, async () => {
      const [n, h, w, ch] = c.x;
      const fShape = [c.k[0], c.k[1], ch, c.out] as [number, number, number, number];
      const xv = randn(n * h * w * ch, 9);
      const fv = randn(fShape.reduce((a, b) => a * b, 1), 10);
      const fwd = () => tf.depthwiseConv2d(tf.tensor4d(xv, c.x), tf.tensor4d(fv, fShape), c.stride, c.pad, 'NHWC', c.dil ?? 1);
      const [yc] = await on('cpu', fwd);
      const { cpu, wasm } = await both(() => {
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, fShape);
        const y = fwd();
        const dy = tf.tensor(randn(y.size, 11), y.shape);
        const attrs = kernelAttrs(c);
        const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { ...attrs, inputShape: c.x } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
        return [y, dx, dw];
      });
      const taps = c.k[0] * c.k[1];
      expect(diff(wasm[0], yc, 1e-6 * taps, 1e-5).worst, 'forward').toBeLessThanOrEqual(0);
      if ((c.dil ?? 1) === 1) {
        // tfjs's cpu backprop kernels ignore dilations (its gradient rejects them), so compare only here
        expect(diff(wasm[1], cpu[1], 1e-6 * taps, 1e-5).worst, 'input gradient').toBeLessThanOrEqual(0);
        expect(diff(wasm[2], cpu[2], 1e-6 * n * h * w, 1e-5).worst, 'filter gradient').toBeLessThanOrEqual(0);
      }
      // adjoint identities of the linear map x -> conv(x, f): <y, dy> = <x, dx> = <f, df>
      if (c.out === 1) {
        const dyv = randn(wasm[0].length, 11);
        const dot = (a: Float32Array, b: Float32Array) => {
          let s = 0;
          for (let i = 0; i < a.length; i++) s += a[i] * b[i];
          return s;
        };
        const ydy = dot(wasm[0], dyv);
        const xdx = dot(xv, wasm[1]);
        const fdf = dot(fv, wasm[2]);
        const tol = 1e-5 * Math.sqrt(wasm[0].length * taps) * 10;
        expect(Math.abs(xdx - ydy), `<x, dx> ${xdx} vs <y, dy> ${ydy}`).toBeLessThan(tol);
        expect(Math.abs(fdf - ydy), `<f, df> ${fdf} vs <y, dy> ${ydy}`).toBeLessThan(tol);
      }
    });
  }
});

describe('Conv2DBackpropFilter', () => {
  for (const c of DENSE) {
    it(`x [${c.x}] k ${c.k} -> ${c.out} stride ${c.stride} pad ${c.pad}`, async () => {
      const [n, h, w, ci] = c.x;
      const fShape = [c.k[0], c.k[1], ci, c.out] as [number, number, number, number];
      const xv = randn(n * h * w * ci, 12);
      const fv = randn(fShape.reduce((a, b) => a * b, 1), 13);
      const { cpu, wasm } = await both(() => {
        const x = tf.tensor4d(xv, c.x);
        const y = tf.conv2d(x, tf.tensor4d(fv, fShape), c.stride, c.pad);
        const dy = tf.tensor(randn(y.size, 14), y.shape);
        const { dilations: _d, ...attrs } = kernelAttrs(c);
        return tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      const d = diff(wasm[0], cpu[0], 1e-6 * n * h * w, 1e-5);
      expect(d.worst, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
    });
  }

  it('tf.grad of a conv net (dense + depthwise) matches cpu', async () => {
    const xv = randn(2 * 12 * 12 * 4, 15);
    const w1 = randn(3 * 3 * 4 * 6, 16);
    const w2 = randn(7 * 7 * 6, 17);
    const net = () => {
      const x = tf.tensor4d(xv, [2, 12, 12, 4]);
      const a = tf.tensor4d(w1, [3, 3, 4, 6]);
      const b = tf.tensor4d(w2, [7, 7, 6, 1]);
      const loss = (xx: tf.Tensor, aa: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.square(tf.depthwiseConv2d(tf.conv2d(xx as tf.Tensor4D, aa as tf.Tensor4D, 2, 'same'), bb as tf.Tensor4D, 1, 'same')));
      return tf.grads(loss as (...t: tf.Tensor[]) => tf.Tensor)([x, a, b]);
    };
    const { cpu, wasm } = await both(net);
    cpu.forEach((e, i) => {
      const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(diff(wasm[i], e, 1e-5 * scale, 1e-4).worst, `gradient ${i}`).toBeLessThanOrEqual(0);
    });
  });
});

describe('Slice, SplitV, Transpose', () => {
  const shape = [3, 5, 7, 6];
  const xv = randn(3 * 5 * 7 * 6, 20);
  const iv = Int32Array.from(xv, (v) => Math.round(v * 1000));
  const exact = async (f: () => tf.Tensor | tf.Tensor[]) => {
    const { cpu, wasm } = await both(f);
    expect(wasm.length).toBe(cpu.length);
    cpu.forEach((e, i) => expect(Array.from(wasm[i])).toEqual(Array.from(e)));
  };
  it('slices (contiguous, strided, 1-D..5-D, int32, bool)', async () => {
    await exact(() => [
      tf.slice(tf.tensor(xv, shape), [1, 0, 0, 0], [2, 5, 7, 6]),
      tf.slice(tf.tensor(xv, shape), [0, 1, 2, 3], [3, 3, 4, 2]),
      tf.slice(tf.tensor(xv, shape), [2, 4, 6, 5], [1, 1, 1, 1]),
      tf.slice(tf.tensor(xv, [105, 6]), [3, 1], [100, 4]),
      tf.slice(tf.tensor(xv), [11], [200]),
      tf.slice(tf.tensor(xv, [3, 5, 7, 3, 2]), [1, 1, 1, 1, 0], [2, 3, 5, 2, 1]),
      tf.slice(tf.tensor(xv.slice(0, 2 * 3 * 2 * 3 * 2 * 3), [2, 3, 2, 3, 2, 3]), [0, 1, 0, 1, 0, 1], [2, 2, 2, 2, 2, 2]),
      tf.cast(tf.slice(tf.tensor(iv, shape, 'int32'), [0, 2, 1, 1], [3, 2, 5, 4]), 'float32'),
      tf.cast(tf.slice(tf.greater(tf.tensor(xv, shape), 0), [0, 2, 1, 1], [3, 2, 5, 4]), 'float32'),
    ]);
  });
  it('splits along every axis, equal and uneven', async () => {
    await exact(() => [
      ...tf.split(tf.tensor(xv, shape), 3, 0),
      ...tf.split(tf.tensor(xv, shape), [1, 3, 1], 1),
      ...tf.split(tf.tensor(xv, shape), [2, 5], 2),
      ...tf.split(tf.tensor(xv, shape), 3, 3),
      ...tf.split(tf.tensor(iv, shape, 'int32'), 2, 3).map((t) => tf.cast(t, 'float32')),
    ]);
  });
  it('transposes (last axis kept, moved, rank 2..6)', async () => {
    await exact(() => [
      tf.transpose(tf.tensor(xv, shape), [0, 2, 1, 3]),
      tf.transpose(tf.tensor(xv, shape), [2, 0, 1, 3]),
      tf.transpose(tf.tensor(xv, shape), [3, 2, 1, 0]),
      tf.transpose(tf.tensor(xv, [105, 6]), [1, 0]),
      tf.transpose(tf.tensor(xv, [3, 5, 7, 3, 2]), [0, 3, 1, 2, 4]),
      tf.transpose(tf.tensor(xv.slice(0, 2 * 3 * 2 * 3 * 2 * 3), [2, 3, 2, 3, 2, 3]), [5, 1, 3, 0, 2, 4]),
      tf.transpose(tf.tensor(xv.slice(0, 2 * 3 * 2 * 3 * 2 * 3), [2, 3, 2, 3, 2, 3]), [1, 0, 3, 2, 4, 5]),
      tf.cast(tf.transpose(tf.tensor(iv, shape, 'int32'), [1, 0, 2, 3]), 'float32'),
    ]);
  });
});

describe('Sum and Identity', () => {
  const shape = [3, 7, 5, 6];
  const xv = randn(3 * 7 * 5 * 6, 21);
  it('sums over every block of axes (keepDims or not), odd sizes, long runs', async () => {
    const cases: Array<[number[], number | number[], boolean]> = [
      [shape, [0, 1, 2], false], // bias gradient
      [shape, [1, 2], true], // GRN spatial sum
      [shape, -1, false], // row sums
      [shape, [2, 3], false],
      [shape, [0], false],
      [shape, [0, 1, 2, 3], false],
      [shape, [0, 2], false], // not one block: handed back to tfjs-wasm
      [[1, 3, 1, 7], [1, 3], true],
      [[5000, 3], 0, false],
      [[2, 5003], 1, false],
    ];
    for (const [s, axis, keep] of cases) {
      const n = s.reduce((a, b) => a * b, 1);
      const v = randn(n, 22);
      const { cpu, wasm } = await both(() => tf.sum(tf.tensor(v, s), axis, keep));
      const terms = n / Math.max(cpu[0].length, 1);
      const d = diff(wasm[0], cpu[0], 1e-6 * Math.sqrt(terms), 1e-6);
      expect(d.worst, `sum [${s}] axis ${axis}: ${d.maxAbs}`).toBeLessThanOrEqual(0);
    }
    const ints = await both(() => tf.cast(tf.sum(tf.tensor(Int32Array.from(xv, (v) => Math.round(v * 100)), shape, 'int32'), [1, 2]), 'float32'));
    expect(Array.from(ints.wasm[0])).toEqual(Array.from(ints.cpu[0]));
  });

  it('Identity shares data and survives disposing its input', async () => {
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    const a = tf.tensor(xv, shape);
    const b = tf.clone(a);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual(Array.from(xv));
    const c = tf.add(b, 1);
    b.dispose();
    expect(c.dataSync()[0]).toBeCloseTo(xv[0] + 1, 5);
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('GatherV2', () => {
  it('gathers rows on any axis (int32 indices, repeated, odd sizes), float32 and int32 values', async () => {
    const xv = randn(4 * 9 * 5, 23);
    const idx = [8, 0, 3, 3, 7, 1, 8];
    const { cpu, wasm } = await both(() => [
      tf.gather(tf.tensor(xv, [4, 9, 5]), tf.tensor1d(idx, 'int32'), 1),
      tf.gather(tf.tensor(xv, [36, 5]), tf.tensor2d([[35, 0], [2, 9], [17, 17]], [3, 2], 'int32'), 0),
      tf.gather(tf.tensor(xv, [4, 9, 5]), tf.tensor1d([4, 0, 2], 'int32'), 2),
      tf.gather(tf.tensor(xv, [180]), tf.tensor1d([179, 0, 5], 'int32')),
      tf.cast(tf.gather(tf.tensor(Int32Array.from(xv, (v) => Math.round(v * 50)), [4, 9, 5], 'int32'), tf.tensor1d(idx, 'int32'), 1), 'float32'),
    ]);
    cpu.forEach((e, i) => expect(Array.from(wasm[i]), `case ${i}`).toEqual(Array.from(e)));
    await useBackend('wasm');
    expect(() => tf.tidy(() => tf.gather(tf.tensor(xv, [36, 5]), tf.tensor1d([36], 'int32')))).toThrow(/index value 36/);
  });
});
