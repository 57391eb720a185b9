/**
 * Importing the package registers our kernels for 'wasm' over tfjs-wasm's (and only there), and the
 * opt-out / opt-in calls round-trip to exactly the kernels that were there before. This file imports
 * tfjs-wasm first and the package afterwards (see registrationOrder.test.ts for the other order), so
 * nothing from src/ or test/helpers is imported statically.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it, vi } from 'vitest';

type Pkg = typeof import('../../src/index.js');

function snapshot(backend: string): Map<string, tf.KernelConfig> {
  return new Map(tf.getKernelsForBackend(backend).map((k) => [k.kernelName, k]));
}

// before the package is imported
const stockWasm = snapshot('wasm');
const others = ['cpu', 'webgl'].map((b) => ({ backend: b, before: snapshot(b) }));
let pkg: Pkg;
let convBackprop: Record<string, tf.KernelFunc>;
const warnings: string[] = [];

beforeAll(async () => {
  const spy = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => {
    warnings.push(a.map(String).join(' '));
  });
  try {
    pkg = await import('../../src/index.js');
  } finally {
    spy.mockRestore();
  }
  convBackprop = (await import('../../src/backends/convBackprop.js')).CONV_BACKPROP_KERNELS;
});

/** `a @ b` on `backend` for fixed odd-sized random inputs. */
async function matMulOn(backend: string): Promise<Float32Array> {
  await tf.setBackend(backend);
  await tf.ready();
  return tf.tidy(() => {
    const a = tf.randomNormal([3, 17, 13], 0, 1, 'float32', 1);
    const b = tf.randomNormal([3, 13, 9], 0, 1, 'float32', 2);
    return tf.matMul(a, b).dataSync().slice() as Float32Array;
  });
}

/** Filter gradient of a 3x3 conv (Conv2DBackpropFilter: ours, or the package's JavaScript fallback). */
async function convFilterGradOn(backend: string): Promise<Float32Array> {
  await tf.setBackend(backend);
  await tf.ready();
  return tf.tidy(() => {
    const x = tf.randomNormal([2, 7, 9, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 3, 5], 0, 1, 'float32', 4) as tf.Tensor4D;
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, f as tf.Tensor4D, 1, 'same'))))(w);
    return g.dataSync().slice() as Float32Array;
  });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Every kernel of ours is registered for 'wasm' over what was there. */
function expectOurs(): void {
  for (const name of pkg.FAST_KERNEL_NAMES) {
    const k = tf.getKernel(name, 'wasm');
    expect(k, name).toBeDefined();
    expect(pkg.fastKernelRegistered(name), name).toBe(true);
    const stock = stockWasm.get(name);
    if (stock) {
      expect(k!.kernelFunc, name).not.toBe(stock.kernelFunc);
      expect(k!.setupFunc, `${name}: tfjs-wasm's setup kept`).toBe(stock.setupFunc);
    }
  }
}

/** Exactly what was there before ours: tfjs-wasm's kernels, the package's JavaScript training kernels, nothing for our own names. */
function expectStock(): void {
  for (const name of pkg.FAST_KERNEL_NAMES) {
    expect(pkg.fastKernelRegistered(name), name).toBe(false);
    const k = tf.getKernel(name, 'wasm');
    if (stockWasm.has(name)) expect(k, name).toBe(stockWasm.get(name));
    else if (convBackprop[name]) expect(k?.kernelFunc, name).toBe(convBackprop[name]);
    else expect(k, name).toBeUndefined();
  }
}

describe('kernel registration on import', () => {
  it('importing the package registers ours for wasm at once (Node), with no kernel registered twice', () => {
    expectOurs();
    expect(warnings.filter((w) => w.includes('already registered'))).toEqual([]);
    // the training kernels tfjs-wasm lacks are wrapped by ours, not lost
    for (const name of Object.keys(convBackprop)) expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
  });

  it('leaves the kernels of every other backend untouched', () => {
    for (const { backend, before } of others) {
      const after = snapshot(backend);
      expect([...after.keys()].sort(), backend).toEqual([...before.keys()].sort());
      for (const [name, k] of before) expect(after.get(name), `${backend} ${name}`).toBe(k);
    }
  });

  it('our kernels and the stock ones agree with cpu', async () => {
    const cpuMm = await matMulOn('cpu');
    const cpuGrad = await convFilterGradOn('cpu');
    const fastMm = await matMulOn('wasm');
    const fastGrad = await convFilterGradOn('wasm');
    expectOurs();
    pkg.unregisterFastKernels();
    const stockMm = await matMulOn('wasm');
    const stockGrad = await convFilterGradOn('wasm');
    expectStock();
    await pkg.registerFastKernels();
    for (const [what, got, want, scale] of [
      ['matmul, ours', fastMm, cpuMm, 13],
      ['matmul, stock', stockMm, cpuMm, 13],
      ['conv filter grad, ours', fastGrad, cpuGrad, 2 * 7 * 9 * 5],
      ['conv filter grad, stock (JavaScript)', stockGrad, cpuGrad, 2 * 7 * 9 * 5],
    ] as const) {
      expect(maxDiff(got, want), what).toBeLessThan(2e-6 * scale);
    }
  });

  it('unregister / register round-trips exactly, is idempotent and survives backend switches', async () => {
    const before = tf.memory().numTensors;
    const spy = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      pkg.unregisterFastKernels();
      pkg.unregisterFastKernels();
      expectStock();
      // the opt-out holds when the wasm backend becomes active again (the setup hook installs nothing)
      await tf.setBackend('cpu');
      await tf.setBackend('wasm');
      expectStock();
      await pkg.registerFastKernels();
      await pkg.registerFastKernels();
      await pkg.fastKernelsReady();
      expectOurs();
      // registered twice, yet wrapping tfjs-wasm's once: unregistering gives back the originals
      pkg.unregisterFastKernels();
      expectStock();
      // useWasm: ours by default, fastKernels: false for tfjs-wasm's
      await pkg.useWasm({ fastKernels: false });
      expectStock();
      await pkg.useWasm();
      expectOurs();
      await tf.setBackend('cpu');
      await tf.setBackend('wasm');
      expectOurs();
      expect(spy.mock.calls.filter((c) => String(c[0]).includes('already registered'))).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
