import * as tf from '@tensorflow/tfjs';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { fastKernelRegistered, registerFastKernels, unregisterFastKernels } from '../../src/backends/fastKernels.js';
import { kernelModuleFor } from '../../src/backends/kernelModule.js';
import { enableWasmThreads, useWasm, wasmThreads } from '../../src/backends/wasmThreads.js';
import { swinV2 } from '../../src/models/swin/swinTransformer.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { useBackend } from '../helpers/backends.js';
import { compare, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { on, randn } from './kernelTestUtils.js';

/**
 * The threaded tfjs-wasm binary in Node (enableWasmThreads) gives the same numbers as the
 * single-threaded one, for tfjs's kernels (XNNPACK) and for ours split over the same threads.
 */

/** A mix of ops large enough that XNNPACK and our kernels split them over threads. */
function workload(): tf.Tensor[] {
  const a = tf.tensor2d(randn(256 * 192, 1), [256, 192]);
  const b = tf.tensor2d(randn(192 * 160, 2), [192, 160]);
  const q = tf.tensor3d(randn(24 * 64 * 32, 3), [24, 64, 32]);
  const x = tf.tensor4d(randn(2 * 28 * 28 * 24, 4), [2, 28, 28, 24]);
  const w = tf.tensor4d(randn(3 * 3 * 24 * 32, 5), [3, 3, 24, 32]);
  const dw = tf.tensor4d(randn(7 * 7 * 24, 6), [7, 7, 24, 1]);
  const conv = tf.conv2d(x, w, 1, 'same');
  const [gx, gdw] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
    tf.sum(tf.square(tf.depthwiseConv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 1, 'same'))),
  )([x, dw]);
  return [
    tf.matMul(a, b),
    tf.matMul(a, b.transpose(), false, true),
    tf.matMul(q, q, false, true),
    tf.softmax(tf.matMul(q, q, false, true)),
    conv,
    tf.depthwiseConv2d(x, dw, 1, 'same'),
    tf.erf(a),
    gx,
    gdw,
  ];
}

function expectSame(a: Float32Array[], b: Float32Array[], what: string): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => {
    let worst = 0;
    for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(v[j] - b[i][j]));
    expect(worst, `${what}: output ${i} differs by up to ${worst}`).toBe(0);
  });
}

describe('enableWasmThreads (Node)', () => {
  it('runs tfjs-wasm and our kernels on 2 threads with results equal to 1 thread', async () => {
    await useBackend('wasm');
    unregisterFastKernels(); // ours are registered on import: tfjs-wasm's first
    const stock1 = await on('wasm', workload);
    await registerFastKernels();
    const fast1 = await on('wasm', workload);
    unregisterFastKernels();

    await enableWasmThreads(2);
    expect(wasmThreads()).toBe(2);
    expect(getThreadsCount()).toBe(2);
    expect(tf.getBackend()).toBe('wasm');
    const stock2 = await on('wasm', workload);
    expectSame(stock2, stock1, 'tfjs-wasm kernels, 2 threads vs 1');

    await registerFastKernels();
    const mod = kernelModuleFor(tf.backend());
    expect(mod?.shared).toBe(true);
    expect(mod?.threads).toBe(2);
    const before = tf.memory().numTensors;
    const fast2 = await on('wasm', workload);
    expect(tf.memory().numTensors).toBe(before);
    expectSame(fast2, fast1, 'our kernels, 2 threads vs 1');
    unregisterFastKernels();
  });

  it('keeps SwinV2 fixture parity with 2 threads and our kernels, equal to 1 thread', async () => {
    const run = () => {
      // loaded per run: re-creating the wasm backend invalidates tensors held on the old one
      const fx = loadFixture('swinv2_p4w4_64');
      const model = swinV2(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      const y = model.forward(x) as tf.Tensor;
      const r = compare(y, fx.io.logits, fx.case.atol, fx.case.rtol);
      const v = y.dataSync().slice() as Float32Array;
      tf.dispose([x, y]);
      model.dispose();
      fx.dispose();
      return { r, v };
    };
    await useWasm({ threads: 2 }); // our kernels by default
    expect(fastKernelRegistered('BatchMatMul')).toBe(true);
    expect(getThreadsCount()).toBe(2);
    const two = run();
    expect(two.r.worstExcess, `2 threads: max abs err ${two.r.maxAbsErr}`).toBeLessThanOrEqual(0);
    await useWasm({ threads: 1, fastKernels: true });
    expect(getThreadsCount()).toBe(1);
    const one = run();
    expect(one.r.worstExcess, `1 thread: max abs err ${one.r.maxAbsErr}`).toBeLessThanOrEqual(0);
    expectSame([two.v], [one.v], 'SwinV2 logits, 2 threads vs 1');
    console.log(`swinv2_p4w4_64 logits with our kernels: max abs err ${one.r.maxAbsErr} (1 thread), ${two.r.maxAbsErr} (2 threads)`);
    unregisterFastKernels();
  });
});
