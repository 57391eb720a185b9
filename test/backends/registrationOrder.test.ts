/**
 * The package imported before `@tensorflow/tfjs-backend-wasm`: tfjs-wasm's own registration on import
 * must neither overwrite ours nor warn about kernels registered twice; ours are installed when the
 * wasm backend becomes active. Nothing imported statically here loads tfjs-wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it, vi } from 'vitest';
import { CONV_BACKPROP_KERNELS } from '../../src/backends/convBackprop.js';
import * as pkg from '../../src/index.js';

const wasmLoadedFirst = tf.findBackendFactory('wasm') !== null;

describe('kernel registration when tfjs-wasm is imported after the package', () => {
  it('installs ours when the wasm backend starts, over tfjs-wasm kernels, with no warning', async () => {
    expect(wasmLoadedFirst, 'tfjs-wasm must not be loaded before the package in this file').toBe(false);
    const warnings: string[] = [];
    const spy = vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => {
      warnings.push(a.map(String).join(' '));
    });
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      const stock = new Map(pkg.FAST_KERNEL_NAMES.map((n) => [n, tf.getKernel(n, 'wasm')]));
      expect(stock.get('BatchMatMul'), 'tfjs-wasm registered its BatchMatMul').toBeDefined();
      await tf.setBackend('wasm');
      await tf.ready();
      for (const name of pkg.FAST_KERNEL_NAMES) {
        expect(pkg.fastKernelRegistered(name), name).toBe(true);
        const s = stock.get(name);
        if (s && !CONV_BACKPROP_KERNELS[name]) expect(tf.getKernel(name, 'wasm')!.setupFunc, name).toBe(s.setupFunc);
      }
      expect(warnings.filter((w) => w.includes('already registered'))).toEqual([]);

      // they compute: a batched product with odd sizes against cpu
      const run = () =>
        tf.tidy(() =>
          tf
            .matMul(tf.randomNormal([2, 9, 11], 0, 1, 'float32', 5), tf.randomNormal([2, 7, 11], 0, 1, 'float32', 6), false, true)
            .dataSync()
            .slice(),
        );
      const wasm = run();
      await tf.setBackend('cpu');
      const cpu = run();
      let worst = 0;
      for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(wasm[i] - cpu[i]));
      expect(worst).toBeLessThan(2e-6 * 11);

      // the opt-out puts back tfjs-wasm's kernels and the package's JavaScript training kernels
      pkg.unregisterFastKernels();
      for (const name of pkg.FAST_KERNEL_NAMES) {
        const k = tf.getKernel(name, 'wasm');
        if (CONV_BACKPROP_KERNELS[name]) expect(k?.kernelFunc, name).toBe(CONV_BACKPROP_KERNELS[name]);
        else expect(k, name).toBe(stock.get(name));
      }
    } finally {
      spy.mockRestore();
    }
  });
});
