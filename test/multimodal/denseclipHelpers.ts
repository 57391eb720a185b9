import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { Module } from '../../src/layers/module.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import type { Fixture } from '../helpers/fixtures.js';

const bytes = (t: tf.Tensor) => {
  const a = t.dataSync() as Float32Array;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

/** `writeSafetensors(stateDict())` of a model loaded from the case's file reproduces every tensor byte for byte. */
export function expectRoundTrip(model: Module, fx: Fixture): void {
  loadTimmWeights(model, fx.weightsBytes!);
  const sd = model.stateDict();
  const back = readSafetensors(writeSafetensors(sd));
  const ref = readSafetensors(fx.weightsBytes!);
  expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
  for (const k of Object.keys(ref)) {
    expect(back[k].shape, k).toEqual(ref[k].shape);
    // integer scalars (num_batches_tracked, I64 in the file) are compared by value
    if (ref[k].dtype !== 'float32') expect(Array.from(back[k].dataSync()), k).toEqual(Array.from(ref[k].dataSync()));
    else expect(Buffer.compare(bytes(back[k]), bytes(ref[k])), k).toBe(0);
  }
  tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
}
