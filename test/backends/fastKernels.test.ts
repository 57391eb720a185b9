import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAST_KERNEL_NAMES, registerFastKernels } from '../../src/backends/fastKernels.js';
import { kernelSimd } from '../../src/backends/kernelModule.js';
import { fusedGelu, fusedLayerNorm } from '../../src/backends/fusedOps.js';
import { fusedGrn } from '../../src/backends/fusedAttention.js';
import { fusedBiasMaskSoftmax } from '../../src/backends/fusedSoftmax.js';
import { biasMaskSoftmax } from '../../src/layers/attention.js';
import { gelu } from '../../src/layers/activations.js';
import { GlobalResponseNorm } from '../../src/layers/grn.js';
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
    { a: [2, 3, 0], b: [2, 0, 4], why: 'K = 0 (zeros)' },
    { a: [1300, 37], b: [1300, 21], ta: true, why: 'K past one pass of 512 (three, the last ragged): a weight gradient' },
    { a: [2, 9, 1025], b: [1025, 16], why: 'K = 1025 with B shared by the batches' },
  ];
  for (const c of cases) {
    it(`${c.why}: [${c.a}]${c.ta ? 'T' : ''} x [${c.b}]${c.tb ? 'T' : ''}`, async () => {
      const av = randn(
        c.a.reduce((p, v) => p * v, 1),
        1,
      );
      const bv = randn(
        c.b.reduce((p, v) => p * v, 1),
        2,
      );
      const k = c.ta ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
      const { cpu, wasm } = await both(() => tf.matMul(tf.tensor(av, c.a), tf.tensor(bv, c.b), c.ta, c.tb));
      const d = diff(wasm[0], cpu[0], 2e-6 * Math.max(k, 1), 1e-5);
      expect(d.worst, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
    });
  }
});

describe('GEMM summation order', () => {
  it('sums each element as one float32 chain in k order, across passes over K (SIMD128 build: bit for bit)', async () => {
    // K = 1100 takes three passes of at most 512 rows of B; each pass starts from the C the last one stored
    const [m, n, k] = [6, 11, 1100];
    const av = randn(m * k, 31);
    const bv = randn(k * n, 32);
    const [c] = await on('wasm', () => tf.matMul(tf.tensor2d(av, [m, k]), tf.tensor2d(bv, [k, n])));
    const fused = kernelSimd() === 'relaxed';
    let worst = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++)
          s = fused ? Math.fround(s + av[i * k + t] * bv[t * n + j]) : Math.fround(s + Math.fround(av[i * k + t] * bv[t * n + j]));
        worst = Math.max(worst, Math.abs(c[i * n + j] - s) / Math.max(Math.abs(s), 1e-3));
      }
    }
    // the relaxed build fuses each multiply-add (one rounding, emulated here in float64 then rounded)
    expect(worst).toBeLessThanOrEqual(fused ? 1e-6 : 0);
  });
});

describe('Erf', () => {
  const special = [
    0,
    -0,
    1e-30,
    -1e-30,
    1e-8,
    0.5,
    0.921875,
    -0.921875,
    0.92187494,
    3.92,
    -3.92,
    3.9199998,
    4,
    10,
    -10,
    Infinity,
    -Infinity,
    NaN,
  ];
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
    for (const [rows, c] of [
      [1, 1],
      [3, 3],
      [5, 8],
      [7, 96],
      [2, 97],
      [300, 37], // many rows: the weight gradient sums them in float64
    ]) {
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
      const wasm = await on(
        'wasm',
        run((x, w, b) => fusedLayerNorm(x, w, b, eps)!),
      );
      const names = ['y', 'dx', 'dw', 'db'];
      cpu.forEach((e, i) => {
        const d = diff(wasm[i], e, 2e-5, 1e-4);
        expect(d.worst, `${names[i]} rows ${rows} C ${c}: ${d.maxAbs}`).toBeLessThanOrEqual(0);
      });
    }
  });
});

describe('global response norm (VisBackbonesGrn)', () => {
  for (const shape of [
    [2, 17, 19, 37], // more pixels than one block of sums, channels not a multiple of 4
    [1, 56, 56, 40], // ConvNeXt V2 atto's first stage
    [3, 1, 1, 5],
  ] as Array<[number, number, number, number]>) {
    it(`equals the composed formula on cpu for [${shape}], and leaves taping to it`, async () => {
      const c = shape[3];
      const [xv, gv, bv] = [
        randn(
          shape.reduce((a, b) => a * b, 1),
          21,
          2,
        ),
        randn(c, 22, 0.5),
        randn(c, 23, 0.5),
      ];
      const run = (useFused: boolean) => () => {
        const grn = new GlobalResponseNorm(c);
        grn.weight.value.assign(tf.tensor1d(gv));
        grn.bias.value.assign(tf.tensor1d(bv));
        const x = tf.tensor4d(xv, shape);
        const fused = fusedGrn(x, grn.weight.value, grn.bias.value, grn.eps);
        if (useFused && !fused) throw new Error('no fused GRN kernel on wasm');
        const y = fused ?? grn.forward(x);
        // while a tape records, the layer computes the composed ops (the kernel has no gradient)
        const taped = tf.grad((t: tf.Tensor) => {
          if (fusedGrn(t, grn.weight.value, grn.bias.value, grn.eps)) throw new Error('fused GRN while taping');
          return tf.sum(grn.forward(t));
        })(x);
        grn.dispose();
        return [y, taped];
      };
      const cpu = await on('cpu', run(false));
      const wasm = await on('wasm', run(true));
      expect(diff(wasm[0], cpu[0], 1e-5, 1e-5).worst).toBeLessThanOrEqual(0);
      expect(diff(wasm[1], cpu[1], 1e-5, 1e-4).worst).toBeLessThanOrEqual(0);
    });
  }
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
  { x: [2, 3, 2, 6], k: [7, 7], out: 1, stride: 1, pad: 3 }, // the taps pass both edges of a map smaller than the filter
  { x: [1, 4, 5, 8], k: [3, 3], out: 1, stride: 1, pad: 4 }, // rows and columns of output that see only padding
  { x: [1, 14, 14, 160], k: [7, 7], out: 1, stride: 1, pad: 3 }, // ConvNeXt's stage 3
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
      const fv = randn(
        fShape.reduce((a, b) => a * b, 1),
        10,
      );
      const fwd = () => tf.depthwiseConv2d(tf.tensor4d(xv, c.x), tf.tensor4d(fv, fShape), c.stride, c.pad, 'NHWC', c.dil ?? 1);
      const [yc] = await on('cpu', fwd);
      const { cpu, wasm } = await both(() => {
        const x = tf.tensor4d(xv, c.x);
        const f = tf.tensor4d(fv, fShape);
        const y = fwd();
        const dy = tf.tensor(randn(y.size, 11), y.shape);
        const attrs = kernelAttrs(c);
        const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, {
          ...attrs,
          inputShape: c.x,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
        const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, {
          ...attrs,
          filterShape: fShape,
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
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
      const fv = randn(
        fShape.reduce((a, b) => a * b, 1),
        13,
      );
      const { cpu, wasm } = await both(() => {
        const x = tf.tensor4d(xv, c.x);
        const y = tf.conv2d(x, tf.tensor4d(fv, fShape), c.stride, c.pad);
        const dy = tf.tensor(randn(y.size, 14), y.shape);
        const { dilations: _d, ...attrs } = kernelAttrs(c);
        return tf
          .engine()
          .runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
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
    const ints = await both(() =>
      tf.cast(
        tf.sum(
          tf.tensor(
            Int32Array.from(xv, (v) => Math.round(v * 100)),
            shape,
            'int32',
          ),
          [1, 2],
        ),
        'float32',
      ),
    );
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
      tf.gather(
        tf.tensor(xv, [36, 5]),
        tf.tensor2d(
          [
            [35, 0],
            [2, 9],
            [17, 17],
          ],
          [3, 2],
          'int32',
        ),
        0,
      ),
      tf.gather(tf.tensor(xv, [4, 9, 5]), tf.tensor1d([4, 0, 2], 'int32'), 2),
      tf.gather(tf.tensor(xv, [180]), tf.tensor1d([179, 0, 5], 'int32')),
      tf.cast(
        tf.gather(
          tf.tensor(
            Int32Array.from(xv, (v) => Math.round(v * 50)),
            [4, 9, 5],
            'int32',
          ),
          tf.tensor1d(idx, 'int32'),
          1,
        ),
        'float32',
      ),
    ]);
    cpu.forEach((e, i) => expect(Array.from(wasm[i]), `case ${i}`).toEqual(Array.from(e)));
    await useBackend('wasm');
    expect(() => tf.tidy(() => tf.gather(tf.tensor(xv, [36, 5]), tf.tensor1d([36], 'int32')))).toThrow(/index value 36/);
  });
});

describe('Softmax', () => {
  const cases: Array<{ shape: number[]; scale: number; shift?: number; why: string }> = [
    { shape: [1], scale: 1, why: 'one value' },
    { shape: [3], scale: 1, why: 'shorter than a vector' },
    { shape: [5, 7], scale: 3, why: 'odd rows' },
    { shape: [2, 3, 65], scale: 2, why: 'rank 3, 16 vectors + 1' },
    { shape: [4, 64], scale: 1, why: 'window attention rows' },
    { shape: [3, 197], scale: 4, why: 'ViT rows' },
    { shape: [6, 33], scale: 30, shift: 1e4, why: 'large logits' },
    { shape: [6, 9], scale: 30, shift: -1e4, why: 'large negative logits' },
  ];
  for (const c of cases) {
    it(`${c.why}: [${c.shape}]`, async () => {
      const n = c.shape.reduce((a, b) => a * b, 1);
      const v = randn(n, 30, c.scale).map((x) => x + (c.shift ?? 0));
      const { cpu, wasm } = await both(() => tf.softmax(tf.tensor(v, c.shape)));
      const d = diff(wasm[0], cpu[0], 1e-12, 6e-7);
      expect(d.worst, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
    });
  }

  it('masked logits (-100, -1e9, -1e30, -Infinity) get weight 0 (or a denormal, as on cpu)', async () => {
    const m = 13;
    const rows = 8;
    const v = randn(rows * m, 31, 2);
    const fill = [-100, -1e9, -1e30, -Infinity];
    for (let r = 0; r < rows; r++) for (let c = 0; c < m; c++) if ((r + c) % 3 === 0) v[r * m + c] = fill[(r + c) % 4];
    // a row with every logit masked to the same value is uniform
    for (let c = 0; c < m; c++) v[7 * m + c] = -1e9;
    const { cpu, wasm } = await both(() => tf.softmax(tf.tensor2d(v, [rows, m])));
    const d = diff(wasm[0], cpu[0], 1e-12, 6e-7);
    expect(d.worst, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
    for (let i = 0; i < v.length; i++) if (v[i] <= -1e9 && i < 7 * m) expect(wasm[0][i]).toBe(0);
  });

  it("its gradient (tfjs's, from our output) matches cpu", async () => {
    const v = randn(5 * 6, 32);
    const r = randn(5 * 6, 33);
    const { cpu, wasm } = await both(() =>
      tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.softmax(x), tf.tensor2d(r, [5, 6]))))(tf.tensor2d(v, [5, 6])),
    );
    expect(diff(wasm[0], cpu[0], 1e-6, 1e-5).worst).toBeLessThanOrEqual(0);
  });
});

describe('fused bias + mask + softmax (window attention)', () => {
  const shapes: Array<{ b: number; nW: number; heads: number; n: number; m: number }> = [
    { b: 2, nW: 4, heads: 3, n: 7, m: 7 },
    { b: 1, nW: 2, heads: 2, n: 64, m: 64 },
    { b: 3, nW: 1, heads: 5, n: 5, m: 9 },
  ];
  for (const s of shapes) {
    for (const [useBias, useMask] of [
      [true, true],
      [true, false],
      [false, true],
      [false, false],
    ] as const) {
      it(`B ${s.b} nW ${s.nW} heads ${s.heads} [${s.n}, ${s.m}] bias ${useBias} mask ${useMask}: values and gradients`, async () => {
        const g = s.b * s.nW * s.heads;
        const xv = randn(g * s.n * s.m, 40, 3);
        const bv = randn(s.heads * s.n * s.m, 41);
        // Swin's shifted-window mask: 0 or -100; one window row fully at -1e9 as well
        const mv = Float32Array.from(randn(s.nW * s.n * s.m, 42), (u, i) => (i < s.m ? -1e9 : u > 0.3 ? -100 : 0));
        const rv = randn(g * s.n * s.m, 43);
        const { cpu, wasm } = await both(() => {
          const x = tf.tensor3d(xv, [g, s.n, s.m]);
          const bias = tf.tensor3d(bv, [s.heads, s.n, s.m]);
          const mask = tf.tensor3d(mv, [s.nW, s.n, s.m]);
          const f = (xx: tf.Tensor, bb: tf.Tensor, mm: tf.Tensor) => biasMaskSoftmax(xx, useBias ? bb : null, useMask ? mm : null, s.heads);
          const r = tf.tensor3d(rv, [g, s.n, s.m]);
          // gradients with respect to the inputs in use (a mask is a buffer in the models, but has one)
          const used = [x, ...(useBias ? [bias] : []), ...(useMask ? [mask] : [])];
          const loss = (...t: tf.Tensor[]) => tf.sum(tf.mul(f(t[0], useBias ? t[1] : bias, useMask ? t[t.length - 1] : mask), r));
          return [f(x, bias, mask), ...tf.grads(loss)(used)];
        });
        const names = ['y', 'dx', ...(useBias ? ['dbias'] : []), ...(useMask ? ['dmask'] : [])];
        const terms = [1, 1, ...(useBias ? [s.b * s.nW] : []), ...(useMask ? [s.b * s.heads] : [])];
        expect(wasm.length).toBe(names.length);
        cpu.forEach((e, i) => {
          const d = diff(wasm[i], e, 1e-6 * terms[i], 1e-5);
          expect(d.worst, `${names[i]}: max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
        });
      });
    }
  }

  it('runs as one kernel on wasm and not at all on cpu', async () => {
    await useBackend('wasm');
    expect(tf.tidy(() => fusedBiasMaskSoftmax(tf.zeros([6, 4, 4]), tf.zeros([3, 4, 4]), tf.zeros([2, 4, 4]), 3) !== null)).toBe(true);
    // shapes that are not window attention's: the composition, which reports the mismatch
    expect(tf.tidy(() => fusedBiasMaskSoftmax(tf.zeros([6, 4, 4]), tf.zeros([4, 4, 4]), null, 3) === null)).toBe(true);
    await useBackend('cpu');
    expect(tf.tidy(() => fusedBiasMaskSoftmax(tf.zeros([6, 4, 4]), tf.zeros([3, 4, 4]), null, 3) === null)).toBe(true);
  });
});

describe('_FusedMatMul (tf.fused.matMul with a bias)', () => {
  const cases: Array<{ a: number[]; b: number[]; bias: number[]; ta?: boolean; tb?: boolean; act?: 'relu'; why: string }> = [
    { a: [37, 19], b: [19, 23], bias: [23], why: 'Linear, odd sizes' },
    { a: [64, 96], b: [96, 288], bias: [288], why: 'SwinV2 qkv' },
    { a: [3, 5, 7], b: [3, 7, 9], bias: [1, 9], why: 'batched, [1, N] bias' },
    { a: [13, 6], b: [10, 6], bias: [10], tb: true, why: 'transposeB' },
    { a: [6, 13], b: [6, 10], bias: [10], ta: true, why: 'transposeA' },
    { a: [9, 8], b: [8, 5], bias: [5], act: 'relu', why: 'relu (handed back to tfjs-wasm)' },
  ];
  for (const c of cases) {
    it(`${c.why}: [${c.a}]${c.ta ? 'T' : ''} x [${c.b}]${c.tb ? 'T' : ''} + [${c.bias}]`, async () => {
      const size = (s: number[]) => s.reduce((p, v) => p * v, 1);
      const av = randn(size(c.a), 50);
      const bv = randn(size(c.b), 51);
      const cv = randn(size(c.bias), 52);
      const k = c.ta ? c.a[c.a.length - 2] : c.a[c.a.length - 1];
      const { cpu, wasm } = await both(() => {
        const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) =>
          tf.fused.matMul({ a, b, bias, transposeA: c.ta, transposeB: c.tb, activation: c.act ?? 'linear' });
        const [a, b, bias] = [tf.tensor(av, c.a), tf.tensor(bv, c.b), tf.tensor(cv, c.bias)];
        const y = f(a, b, bias);
        const r = tf.tensor(randn(y.size, 53), y.shape);
        const grads = tf.grads((aa: tf.Tensor, bb: tf.Tensor, cc: tf.Tensor) => tf.sum(tf.mul(f(aa, bb, cc), r)))([a, b, bias]);
        return [y, ...grads];
      });
      cpu.forEach((e, i) => {
        const d = diff(wasm[i], e, 2e-6 * Math.max(k, 40), 1e-5);
        expect(d.worst, `output ${i}: max abs ${d.maxAbs}`).toBeLessThanOrEqual(0);
      });
    });
  }
});

describe('Add, Sub, Multiply, RealDiv, Maximum, Minimum, Square', () => {
  const pairs: Array<[number[], number[], string]> = [
    [[7, 13], [7, 13], 'same shape, odd'],
    [[3, 5, 19], [19], 'bias row'],
    [[3, 5, 19], [3, 5, 1], 'per-row scalar (l2 normalisation)'],
    [[4, 3, 6, 6], [3, 1, 1], 'per-head scale'],
    [[2, 3, 5], [], 'scalar'],
    [[], [2, 3, 5], 'scalar first'],
    [[5, 1, 7], [1, 6, 1], 'outer product'],
    [[1, 9], [9, 1], 'both broadcast'],
    [[2, 1, 3, 1, 4], [1, 5, 1, 2, 1], 'five groups (handed back to tfjs-wasm)'],
    [[3, 0, 4], [4], 'empty'],
  ];
  const ops: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
    ['add', tf.add],
    ['sub', tf.sub],
    ['mul', tf.mul],
    ['div', tf.div],
    ['maximum', tf.maximum],
    ['minimum', tf.minimum],
  ];
  it('equal tfjs cpu exactly on broadcasts of every kind', async () => {
    for (const [as, bs, why] of pairs) {
      const av = randn(
        as.reduce((p, v) => p * v, 1),
        60,
      );
      const bv = randn(
        bs.reduce((p, v) => p * v, 1),
        61,
      );
      const { cpu, wasm } = await both(() => ops.map(([, f]) => f(tf.tensor(av, as), tf.tensor(bv, bs))));
      cpu.forEach((e, i) => expect(Array.from(wasm[i]), `${ops[i][0]} [${as}] [${bs}] (${why})`).toEqual(Array.from(e)));
    }
  });
  it('NaN, infinities and signed zeros as on cpu; Square; int32 handed back', async () => {
    const av = Float32Array.from([NaN, 1, -0, 0, Infinity, -Infinity, 3, -2, 0, 5, NaN]);
    const bv = Float32Array.from([1, NaN, 0, -0, Infinity, 2, -Infinity, 0, 0, -0, NaN]);
    const { cpu, wasm } = await both(() => [
      ...ops.map(([, f]) => f(tf.tensor1d(av), tf.tensor1d(bv))),
      tf.square(tf.tensor(randn(2 * 3 * 7, 62), [2, 3, 7])),
      tf.cast(tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')), 'float32'),
    ]);
    cpu.forEach((e, i) => expect(Array.from(wasm[i]), `output ${i}`).toEqual(Array.from(e)));
  });
});

describe('Relu and Sigmoid', () => {
  it('Relu equals cpu exactly, Sigmoid within 3 ulp (denormals may flush to 0), odd lengths and special values', async () => {
    const special = [0, -0, 1e-30, -1e-30, 0.5, -0.5, 20, -20, 88, -88, 104, -104, 1e30, -1e30, Infinity, -Infinity, NaN];
    for (const n of [1, 3, 4, 7, 1001]) {
      const v = Float32Array.from([...special, ...randn(n, 63, 6)]);
      const { cpu, wasm } = await both(() => [
        tf.relu(tf.tensor1d(v)),
        tf.sigmoid(tf.tensor1d(v)),
        tf.relu(tf.tensor(v.slice(0, 12), [3, 4])),
      ]);
      expect(Array.from(wasm[0])).toEqual(Array.from(cpu[0]));
      expect(Array.from(wasm[2])).toEqual(Array.from(cpu[2]));
      for (let i = 0; i < v.length; i++) {
        const e = cpu[1][i];
        if (e !== e) {
          expect(wasm[1][i]).toBeNaN();
          continue;
        }
        // 3 ulp (2^-23 relative); a denormal result (x < -87.3) may come out as 0
        expect(Math.abs(wasm[1][i] - e), `sigmoid(${v[i]}) = ${wasm[1][i]}, cpu ${e}`).toBeLessThanOrEqual(
          Math.max(3 * 2 ** -23 * Math.abs(e), 2 ** -126),
        );
      }
    }
  });
});
