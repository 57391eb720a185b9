import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { enableWasmThreads } from '../../src/index.js';

/**
 * `enableWasmThreads(n)` as the first call of a program, before any backend exists (the common
 * start-up: `await useWasm({ threads: 2 })`). It used to lose to a single-threaded wasm backend that
 * its own backend lookup had started.
 */
describe('enableWasmThreads before any backend is initialised', () => {
  it('starts the threaded binary with the requested count, and results equal cpu', async () => {
    await enableWasmThreads(2);
    const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as { getThreadsCount(): number };
    expect(wasm.getThreadsCount()).toBe(2);
    expect(tf.getBackend()).toBe('wasm');
    const a = tf.randomNormal([67, 129], 0, 1, 'float32', 1);
    const b = tf.randomNormal([129, 33], 0, 1, 'float32', 2);
    const av = await a.data();
    const bv = await b.data();
    const got = await tf.matMul(a, b).data();
    await tf.setBackend('cpu');
    const want = await tf.matMul(tf.tensor2d(av, [67, 129]), tf.tensor2d(bv, [129, 33])).data();
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
    expect(err).toBeLessThan(1e-4);
    await enableWasmThreads(1);
  });
});
