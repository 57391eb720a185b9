import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeBinary } from '../../src/backends/binaryKernels.js';
import { makeDepthwiseInputGrad } from '../../src/backends/convKernels.js';
import { KernelArgs, kernelModuleFor } from '../../src/backends/kernelModule.js';
import { makeBatchMatMul } from '../../src/backends/matMulKernel.js';
import { makeSoftmax } from '../../src/backends/softmaxKernels.js';
import { makeUnary } from '../../src/backends/pointwiseKernels.js';
import { useBackend } from '../helpers/backends.js';
import { diff, randn } from './kernelTestUtils.js';

/**
 * Tensors past 2 GiB of heap (issue 21, item 6: no signed 32-bit byte offsets). Our kernels run on a
 * stand-in for the wasm backend whose memory is 2 GiB + 8 MiB and whose allocator hands out only
 * addresses above 2^31 (so every offset is negative as an int32); results are compared with the cpu
 * backend. The memory's untouched pages are never committed: this costs a few MiB of RAM, not 2 GiB.
 */

const BASE = 2 ** 31 + 4096;
const PAGES = 32768 + 128;

class HighBackend {
  readonly memory = new WebAssembly.Memory({ initial: PAGES });
  private next = BASE;
  private readonly map = new Map<object, { memoryOffset: number }>();
  readonly wasm = {
    _malloc: (n: number) => {
      const p = this.next;
      this.next += Math.ceil(Math.max(n, 1) / 64) * 64;
      if (this.next > this.memory.buffer.byteLength) throw new Error('test heap exhausted');
      return p;
    },
    _free: () => {},
    HEAPU8: new Uint8Array(this.memory.buffer),
    wasmMemory: this.memory,
  };
  readonly dataIdMap = { get: (id: unknown) => this.map.get(id as object) };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo {
    const dataId = {};
    this.map.set(dataId, { memoryOffset: this.wasm._malloc(shape.reduce((a, b) => a * b, 1) * 4) });
    return { dataId, shape, dtype };
  }
  disposeData(): boolean {
    return true;
  }
  tensor(values: Float32Array, shape: number[]): tf.TensorInfo {
    const t = this.makeOutput(shape, 'float32');
    this.view(t).set(values);
    return t;
  }
  view(t: tf.TensorInfo): Float32Array {
    return new Float32Array(
      this.memory.buffer,
      this.map.get(t.dataId as object)!.memoryOffset,
      t.shape.reduce((a, b) => a * b, 1),
    );
  }
}

const notOurs = () => {
  throw new Error('handed back to tfjs-wasm: our kernel did not take this case');
};

describe('kernels on tensors past 2 GiB', () => {
  let hb: HighBackend;
  beforeAll(async () => {
    await useBackend('cpu');
    hb = new HighBackend();
  });

  const run = (k: (args: KernelArgs) => unknown, inputs: Record<string, tf.TensorInfo>, attrs: tf.NamedAttrMap = {}) =>
    hb.view(k({ inputs, backend: hb, attrs }) as tf.TensorInfo).slice();

  it('the kernel module binds there, with scratch and zero blocks above 2^31 (unsigned, aligned)', () => {
    const mod = kernelModuleFor(hb)!;
    expect(mod).not.toBeNull();
    const s = mod.scratch(1000);
    expect(s).toBeGreaterThanOrEqual(2 ** 31);
    expect(s % 16).toBe(0);
    const z = mod.zero();
    expect(z).toBeGreaterThanOrEqual(2 ** 31);
    expect(Array.from(new Uint8Array(hb.memory.buffer, z, 16))).toEqual(new Array(16).fill(0));
  });

  it('GEMM (batched, transposed B), binary, GELU and softmax equal cpu', () => {
    const [B, M, K, N] = [2, 19, 37, 23];
    const av = randn(B * M * K, 1);
    const bv = randn(B * N * K, 2);
    const mm = run(
      makeBatchMatMul(notOurs),
      { a: hb.tensor(av, [B, M, K]), b: hb.tensor(bv, [B, N, K]) },
      { transposeA: false, transposeB: true },
    );
    const ref = tf.tidy(() => tf.matMul(tf.tensor(av, [B, M, K]), tf.tensor(bv, [B, N, K]), false, true).dataSync() as Float32Array);
    expect(diff(mm, ref, 2e-6 * K, 1e-5).worst).toBeLessThanOrEqual(0);

    const xv = randn(7 * 33, 3);
    const yv = randn(33, 4);
    const add = run(makeBinary('Add', notOurs), { a: hb.tensor(xv, [7, 33]), b: hb.tensor(yv, [33]) });
    expect(
      diff(
        add,
        tf.tidy(() => tf.add(tf.tensor(xv, [7, 33]), tf.tensor(yv, [33])).dataSync() as Float32Array),
        0,
      ).worst,
    ).toBeLessThanOrEqual(0);

    const g = run(makeUnary('gelu', notOurs), { x: hb.tensor(xv, [7, 33]) });
    const x = tf.tensor(xv);
    const gref = tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)).dataSync() as Float32Array);
    x.dispose();
    expect(diff(g, gref, 1e-6, 1e-6).worst).toBeLessThanOrEqual(0);

    const sm = run(makeSoftmax(notOurs), { logits: hb.tensor(xv, [7, 33]) }, { dim: -1 });
    const sref = tf.tidy(() => tf.softmax(tf.tensor(xv, [7, 33])).dataSync() as Float32Array);
    expect(diff(sm, sref, 1e-7, 1e-5).worst).toBeLessThanOrEqual(0);
  });

  it('depthwise input gradient, stride 1 (the flipped-filter copy in JavaScript) equals cpu', () => {
    const xs = [2, 9, 10, 8];
    const dyv = randn(2 * 9 * 10 * 8, 5);
    const fv = randn(3 * 3 * 8, 6);
    const attrs = { inputShape: xs, strides: [1, 1], pad: 'same', dilations: [1, 1] } as unknown as tf.NamedAttrMap;
    const dx = run(makeDepthwiseInputGrad(notOurs), { dy: hb.tensor(dyv, [2, 9, 10, 8]), filter: hb.tensor(fv, [3, 3, 8, 1]) }, attrs);
    const ref = tf.tidy(
      () =>
        (
          tf
            .engine()
            .runKernel(
              'DepthwiseConv2dNativeBackpropInput',
              { dy: tf.tensor(dyv, [2, 9, 10, 8]), filter: tf.tensor(fv, [3, 3, 8, 1]) },
              attrs,
            ) as tf.Tensor
        ).dataSync() as Float32Array,
    );
    expect(diff(dx, ref, 1e-6 * 9, 1e-5).worst).toBeLessThanOrEqual(0);
  });
});
