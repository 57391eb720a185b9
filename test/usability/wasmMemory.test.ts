import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { WasmOutOfMemoryError } from '../../src/backends/wasmMemoryGuard.js';
import { useBackend } from '../helpers/backends.js';
import { errorOf } from '../helpers/errors.js';

describe('out of memory on the wasm backend', () => {
  beforeAll(() => useBackend('wasm'));

  it('a tensor beyond the 4 GiB heap is an error naming its size, the limit and what to do; the backend keeps working', () => {
    const before = tf.memory().numTensors;
    const t0 = Date.now();
    // 2^31 float32 = 8 GiB: without the guard the i32 malloc argument wraps to 0 bytes
    const e = errorOf(() => tf.fill([2 ** 31], 1.5));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e).toBeInstanceOf(WasmOutOfMemoryError);
    expect(e.message).toMatch(
      /a float32 tensor of shape \[2147483648\] needs 8\.00 GiB .*limited to 4\.00 GiB.*smaller batch.*gradient checkpointing/,
    );
    expect((e as WasmOutOfMemoryError).requestedBytes).toBe(2 ** 33);
    expect(tf.memory().numTensors).toBe(before);
    const y = tf.tidy(() => tf.ones([4]).mul(2).sum());
    expect(y.dataSync()[0]).toBe(8);
    y.dispose();
  });

  it('inside a model-sized op (matMul output of 5 GiB) it is the same error, and tidy scopes unwind', () => {
    const a = tf.ones([40000, 1]);
    const b = tf.ones([1, 33000]);
    const before = tf.memory().numTensors;
    const e = errorOf(() => tf.tidy(() => tf.matMul(a, b).sum()));
    expect(e).toBeInstanceOf(WasmOutOfMemoryError);
    expect(e.message).toMatch(/tensor of shape \[40000, 33000\] needs 4\.92 GiB/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, b]);
  });
});
