import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { readSafetensors } from '../../src/weights/safetensors.js';

/** Folder of the committed golden cases (copied from the reference fixtures). */
export const FIXTURES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A golden case: its case.json, inputs/outputs, and (backbones) the reference state dict bytes. */
export interface Fixture {
  name: string;
  case: Record<string, any>;
  io: Record<string, tf.Tensor>;
  weightsBytes: Uint8Array | null;
  dispose(): void;
}

/** Load a fixture folder. The caller disposes it. */
export function loadFixture(name: string): Fixture {
  const dir = join(FIXTURES_DIR, name);
  const c = JSON.parse(readFileSync(join(dir, 'case.json'), 'utf8'));
  const io = readSafetensors(new Uint8Array(readFileSync(join(dir, 'io.safetensors'))));
  let weightsBytes: Uint8Array | null;
  try {
    weightsBytes = new Uint8Array(readFileSync(join(dir, 'weights.safetensors')));
  } catch {
    weightsBytes = null;
  }
  return { name, case: c, io, weightsBytes, dispose: () => Object.values(io).forEach((t) => t.dispose()) };
}

/** NCHW -> NHWC. */
export function nchwToNhwc(t: tf.Tensor): tf.Tensor4D {
  return tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
}

/** Largest violation of `|a - e| <= atol + rtol |e|` (<= 0 means within tolerance) and the max abs error. */
export function compare(actual: tf.Tensor, expected: tf.Tensor, atol: number, rtol: number): { maxAbsErr: number; worstExcess: number } {
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    throw new Error(`shape mismatch: actual [${actual.shape}] vs expected [${expected.shape}]`);
  }
  const a = actual.dataSync();
  const e = expected.dataSync();
  let maxAbsErr = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - e[i]);
    if (!(d === d)) return { maxAbsErr: NaN, worstExcess: Infinity };
    if (d > maxAbsErr) maxAbsErr = d;
    const ex = d - (atol + rtol * Math.abs(e[i]));
    if (ex > worstExcess) worstExcess = ex;
  }
  return { maxAbsErr, worstExcess };
}

/** Largest `|a[i] - b[i]|` of two equally long arrays (asserts the lengths match). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length, 'array lengths').toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
