import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONV_BACKPROP_KERNELS, registerConvBackpropKernels } from '../../src/backends/convBackprop.js';
import { unregisterFastKernels } from '../../src/backends/fastKernels.js';
import { useBackend } from '../helpers/backends.js';
import { randn } from './kernelTestUtils.js';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  x: [number, number, number, number];
  k: [number, number];
  cout: number; // dense: out channels; depthwise: channel multiplier
  stride: number;
  pad: Pad;
}

/** Loss `sum(conv(x, w) * r)` and its gradients w.r.t. x and w on the active backend. */
function grads(kind: 'dense' | 'depthwise', c: Case, seed: number): { dx: Float32Array; dw: Float32Array; y: Float32Array } {
  const [b, h, w, cin] = c.x;
  const wShape: [number, number, number, number] = [c.k[0], c.k[1], cin, c.cout];
  return tf.tidy(() => {
    const x = tf.tensor4d(randn(b * h * w * cin, seed), c.x);
    const wt = tf.tensor4d(
      randn(
        wShape.reduce((a, v) => a * v, 1),
        seed + 1,
      ),
      wShape,
    );
    const conv = (xx: tf.Tensor4D, ww: tf.Tensor4D) =>
      kind === 'dense' ? tf.conv2d(xx, ww, c.stride, c.pad as never) : tf.depthwiseConv2d(xx, ww, c.stride, c.pad as never);
    const y = conv(x, wt);
    const r = tf.tensor(randn(y.size, seed + 2), y.shape);
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(conv(xx as tf.Tensor4D, ww as tf.Tensor4D), r)));
    const [dx, dw] = g([x, wt]);
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array, y: y.dataSync() as Float32Array };
  });
}

function maxViolation(a: Float32Array, e: Float32Array, atol: number, rtol: number): { maxAbs: number; worst: number } {
  expect(a.length).toBe(e.length);
  let maxAbs = 0;
  let worst = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (!(d === d)) return { maxAbs: NaN, worst: Infinity };
    maxAbs = Math.max(maxAbs, d);
    worst = Math.max(worst, d - (atol + rtol * Math.abs(e[i])));
  }
  return { maxAbs, worst };
}

const CASES: Case[] = [
  { x: [2, 7, 9, 3], k: [3, 3], cout: 5, stride: 1, pad: 'same' },
  { x: [1, 9, 7, 4], k: [3, 3], cout: 2, stride: 2, pad: 'valid' },
  {
    x: [2, 11, 10, 3],
    k: [7, 7],
    cout: 6,
    stride: 4,
    pad: [
      [0, 0],
      [2, 2],
      [2, 2],
      [0, 0],
    ],
  },
  { x: [1, 13, 13, 5], k: [7, 7], cout: 1, stride: 1, pad: 3 },
  { x: [2, 8, 9, 6], k: [3, 2], cout: 3, stride: 2, pad: 'same' },
  {
    x: [1, 6, 5, 2],
    k: [2, 3],
    cout: 2,
    stride: 1,
    pad: [
      [0, 0],
      [1, 0],
      [0, 2],
      [0, 0],
    ],
  },
  { x: [3, 5, 5, 8], k: [3, 3], cout: 1, stride: 2, pad: 1 },
];

describe('conv backprop kernels for wasm', () => {
  // these JavaScript kernels run where ours (registered on import, tested in fastKernels.test.ts) are unregistered
  beforeAll(() => unregisterFastKernels());

  it('are registered for wasm only, and only where tfjs has no kernel', async () => {
    await useBackend('wasm');
    for (const [name, fn] of Object.entries(CONV_BACKPROP_KERNELS)) {
      expect(tf.getKernel(name, 'wasm')?.kernelFunc, name).toBe(fn);
      expect(tf.getKernel(name, 'cpu')?.kernelFunc, name).not.toBe(fn);
    }
    // the native Conv2DBackpropInput is kept
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBeTruthy();
    expect(Object.values(CONV_BACKPROP_KERNELS)).not.toContain(tf.getKernel('Conv2DBackpropInput', 'wasm')!.kernelFunc);
    expect(registerConvBackpropKernels()).toEqual([]);
  });

  for (const kind of ['dense', 'depthwise'] as const) {
    it(`${kind} conv gradients on wasm equal the cpu backend's (odd sizes, strides 1/2/4, valid/same/explicit padding)`, async () => {
      const report: string[] = [];
      for (const [i, c] of CASES.entries()) {
        await useBackend('cpu');
        const ref = grads(kind, c, 100 + i * 7);
        await useBackend('wasm');
        const before = tf.memory().numTensors;
        const got = grads(kind, c, 100 + i * 7);
        expect(tf.memory().numTensors).toBe(before);
        const ex = maxViolation(got.dx, ref.dx, 1e-4, 1e-4);
        const ew = maxViolation(got.dw, ref.dw, 1e-4, 1e-4);
        // sanity: the gradients are not trivially zero
        expect(Math.max(...ref.dw.map(Math.abs))).toBeGreaterThan(0.1);
        expect(ex.worst, `${kind} case ${i} dx (max abs ${ex.maxAbs})`).toBeLessThanOrEqual(0);
        expect(ew.worst, `${kind} case ${i} dw (max abs ${ew.maxAbs})`).toBeLessThanOrEqual(0);
        report.push(`case ${i}: dx ${ex.maxAbs.toExponential(2)}, dw ${ew.maxAbs.toExponential(2)}`);
      }
      console.log(`${kind} wasm vs cpu max abs err: ${report.join('; ')}`);
    });
  }

  /** Direct loops from the definition, with explicit top/left padding. */
  function refDepthwise(
    x: Float32Array,
    dy: Float32Array,
    w: Float32Array,
    [b, h, wd, c]: number[],
    [kh, kw, , m]: number[],
    [oh, ow]: number[],
    s: number,
    d: number,
    top: number,
    left: number,
  ): { dw: Float64Array; dx: Float64Array } {
    const dw = new Float64Array(kh * kw * c * m);
    const dx = new Float64Array(b * h * wd * c);
    for (let n = 0; n < b; n++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const iy = oy * s + i * d - top;
              const ix = ox * s + j * d - left;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              for (let ch = 0; ch < c; ch++)
                for (let q = 0; q < m; q++) {
                  const g = dy[((n * oh + oy) * ow + ox) * c * m + ch * m + q];
                  dw[((i * kw + j) * c + ch) * m + q] += x[((n * h + iy) * wd + ix) * c + ch] * g;
                  dx[((n * h + iy) * wd + ix) * c + ch] += w[((i * kw + j) * c + ch) * m + q] * g;
                }
            }
    return { dw, dx };
  }

  function refDense(
    x: Float32Array,
    dy: Float32Array,
    [b, h, wd, c]: number[],
    [kh, kw, , co]: number[],
    [oh, ow]: number[],
    s: number,
    top: number,
    left: number,
  ): Float64Array {
    const dw = new Float64Array(kh * kw * c * co);
    for (let n = 0; n < b; n++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++)
          for (let i = 0; i < kh; i++)
            for (let j = 0; j < kw; j++) {
              const iy = oy * s + i - top;
              const ix = ox * s + j - left;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              for (let ch = 0; ch < c; ch++)
                for (let q = 0; q < co; q++)
                  dw[((i * kw + j) * c + ch) * co + q] += x[((n * h + iy) * wd + ix) * c + ch] * dy[((n * oh + oy) * ow + ox) * co + q];
            }
    return dw;
  }

  const close = (a: ArrayLike<number>, e: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < e.length; i++) m = Math.max(m, Math.abs(a[i] - e[i]) / (1 + Math.abs(e[i])));
    return m;
  };

  it('depthwise kernels match direct loops with dilation, channel multiplier and explicit / same padding', async () => {
    await useBackend('wasm');
    // x / filter shapes, stride, dilation, padding and the top / left padding it implies
    const cases: { x: number[]; f: number[]; s: number; d: number; pad: Exclude<Pad, number>; top: number; left: number }[] = [
      {
        x: [2, 9, 8, 3],
        f: [3, 3, 3, 2],
        s: 1,
        d: 2,
        pad: [
          [0, 0],
          [2, 1],
          [1, 2],
          [0, 0],
        ],
        top: 2,
        left: 1,
      },
      { x: [1, 10, 11, 4], f: [3, 3, 4, 1], s: 1, d: 3, pad: 'same', top: 3, left: 3 },
      { x: [2, 9, 9, 2], f: [5, 3, 2, 3], s: 2, d: 1, pad: 'valid', top: 0, left: 0 },
    ];
    for (const [ci, c] of cases.entries()) {
      const [b, h, w, ch] = c.x;
      const [kh, kw, , m] = c.f;
      const padH = c.pad === 'valid' ? [0, 0] : c.pad === 'same' ? [c.top, (kh - 1) * c.d - c.top] : [c.pad[1][0], c.pad[1][1]];
      const padW = c.pad === 'valid' ? [0, 0] : c.pad === 'same' ? [c.left, (kw - 1) * c.d - c.left] : [c.pad[2][0], c.pad[2][1]];
      const oh = Math.floor((h + padH[0] + padH[1] - (kh - 1) * c.d - 1) / c.s) + 1;
      const ow = Math.floor((w + padW[0] + padW[1] - (kw - 1) * c.d - 1) / c.s) + 1;
      const xv = randn(b * h * w * ch, 11 + ci);
      const wv = randn(kh * kw * ch * m, 21 + ci);
      const dyv = randn(b * oh * ow * ch * m, 31 + ci);
      const ref = refDepthwise(xv, dyv, wv, c.x, c.f, [oh, ow], c.s, c.d, c.top, c.left);
      const before = tf.memory().numTensors;
      const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
      const wt = tf.tensor4d(wv, c.f as [number, number, number, number]);
      const dy = tf.tensor4d(dyv, [b, oh, ow, ch * m]);
      const attrs = { strides: [c.s, c.s], dilations: [c.d, c.d], pad: c.pad, dimRoundingMode: undefined } as unknown as tf.NamedAttrMap;
      const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: c.f }) as tf.Tensor;
      const dx = tf
        .engine()
        .runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: wt }, { ...attrs, inputShape: c.x }) as tf.Tensor;
      expect(dw.shape).toEqual(c.f);
      expect(dx.shape).toEqual(c.x);
      expect(close(dw.dataSync(), ref.dw), `case ${ci} dW`).toBeLessThan(1e-5);
      expect(close(dx.dataSync(), ref.dx), `case ${ci} dX`).toBeLessThan(1e-5);
      tf.dispose([dw, dx, x, wt, dy]);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('Conv2DBackpropFilter matches direct loops, NHWC and NCHW', async () => {
    await useBackend('wasm');
    const [b, h, w, c, co, k, s] = [2, 9, 7, 3, 4, 3, 2];
    const top = 1;
    const left = 0;
    const pad: Pad = [
      [0, 0],
      [1, 1],
      [0, 1],
      [0, 0],
    ];
    const oh = Math.floor((h + 2 - k) / s) + 1;
    const ow = Math.floor((w + 1 - k) / s) + 1;
    const xv = randn(b * h * w * c, 5);
    const dyv = randn(b * oh * ow * co, 6);
    const ref = refDense(xv, dyv, [b, h, w, c], [k, k, c, co], [oh, ow], s, top, left);
    const x = tf.tensor4d(xv, [b, h, w, c]);
    const dy = tf.tensor4d(dyv, [b, oh, ow, co]);
    const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', filterShape: [k, k, c, co] } as unknown as tf.NamedAttrMap;
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs) as tf.Tensor;
    expect(close(dw.dataSync(), ref)).toBeLessThan(1e-5);
    // the same data in NCHW (explicit padding is given in the NCHW axis order)
    const xc = x.transpose([0, 3, 1, 2]);
    const dyc = dy.transpose([0, 3, 1, 2]);
    const padc = [
      [0, 0],
      [0, 0],
      [1, 1],
      [0, 1],
    ];
    const dwc = tf.engine().runKernel('Conv2DBackpropFilter', { x: xc, dy: dyc }, {
      ...attrs,
      pad: padc,
      dataFormat: 'NCHW',
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    expect(close(dwc.dataSync(), ref)).toBeLessThan(1e-5);
    tf.dispose([x, dy, dw, xc, dyc, dwc]);
  });
});
