import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../src/index.js';
import { useWasm } from '../../src/backends/wasmThreads.js';
import { VisBackbonesError } from '../../src/errors.js';
import { getFamily } from '../../src/models/registry.js';
import { useBackend } from '../helpers/backends.js';

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('useWasm', () => {
  it('refuses to re-create the wasm backend under live models, which keep working', async () => {
    await useBackend('wasm');
    const m = getFamily('swin').tiny(32, { numClasses: 3 });
    const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 1);
    const y0 = (m.forward(x) as tf.Tensor).dataSync().slice();
    const e = await rejection(useWasm({ threads: 2 }));
    expect(e).toBeInstanceOf(VisBackbonesError);
    expect(e.message).toMatch(
      /re-creates the wasm backend, which would destroy the \d+ variable\(s\).*call it first, before building or loading any model/,
    );
    expect(tf.getBackend()).toBe('wasm');
    const y1 = m.forward(x) as tf.Tensor;
    expect(Array.from(y1.dataSync())).toEqual(Array.from(y0));
    tf.dispose([x, y1]);
    m.dispose();
  });

  it('says to install @tensorflow/tfjs-backend-wasm when no wasm backend is registered', async () => {
    await useBackend('cpu');
    const factory = tf.findBackendFactory('wasm')!;
    tf.removeBackend('wasm');
    try {
      const e = await rejection(useWasm());
      expect(e).toBeInstanceOf(VisBackbonesError);
      expect(e.message).toMatch(
        /wasm backend is not registered: install the package \(npm install @tensorflow\/tfjs-backend-wasm@[\d.]+\)/,
      );
    } finally {
      tf.registerBackend('wasm', factory, 2);
    }
    await useWasm();
    expect(tf.getBackend()).toBe('wasm');
  });
});
