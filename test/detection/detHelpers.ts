import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { compare, Fixture, nchwToNhwc } from '../helpers/fixtures.js';

/** Max abs error of every checked output, for the report. */
export const parityLog: Record<string, number> = {};

/** Compare `actual` with fixture output `name` at the case's own tolerance for it; integer / [0, 0] outputs must be equal. */
export function expectClose(fx: Fixture, name: string, actual: tf.Tensor, label = ''): number {
  const tol = fx.case.tolerances?.[name] ?? [fx.case.atol, fx.case.rtol];
  const [atol, rtol] = tol as [number, number];
  const exp = fx.io[name];
  expect(exp, `fixture output ${name}`).toBeDefined();
  let act = actual;
  if (act.shape.length !== exp.shape.length && act.size === exp.size) act = act.reshape(exp.shape);
  expect(act.shape, `${name} shape`).toEqual(exp.shape);
  if (atol === 0 && rtol === 0) {
    expect(Array.from(act.dataSync()), `${label}${name} exact`).toEqual(Array.from(exp.dataSync()));
    if (act !== actual) act.dispose();
    parityLog[`${fx.name}/${name}`] = 0;
    return 0;
  }
  const a = act.dataSync();
  const e = exp.dataSync();
  let maxErr = 0;
  let worst = -Infinity;
  for (let i = 0; i < a.length; i++) {
    const bothNan = a[i] !== a[i] && e[i] !== e[i];
    if (bothNan) continue;
    const d = Math.abs(a[i] - e[i]);
    if (d !== d) {
      worst = Infinity;
      break;
    }
    maxErr = Math.max(maxErr, d);
    worst = Math.max(worst, d - (atol + rtol * Math.abs(e[i])));
  }
  if (act !== actual) act.dispose();
  expect(worst, `${label}${name}: max abs err ${maxErr} (atol ${atol}, rtol ${rtol})`).toBeLessThanOrEqual(0);
  const key = `${fx.name}/${name}`;
  parityLog[key] = Math.max(parityLog[key] ?? 0, maxErr);
  void compare;
  return maxErr;
}

/** The per-image targets of a head fixture. */
export function fixtureTargets(fx: Fixture, n = 2, masks = false) {
  return Array.from({ length: n }, (_, i) => ({
    boxes: fx.io[`targets.${i}.boxes`] as tf.Tensor2D,
    labels: fx.io[`targets.${i}.labels`] as tf.Tensor1D,
    ...(masks ? { masks: fx.io[`targets.${i}.masks`] as tf.Tensor3D } : {}),
  }));
}

/** The NHWC input levels of a head fixture, in level order. */
export function fixtureFeatures(fx: Fixture): tf.Tensor4D[] {
  return Object.keys(fx.case.input_shapes ?? {}).length
    ? Object.keys(fx.case.input_shapes).map((k) => nchwToNhwc(fx.io[k]))
    : Object.keys(fx.io)
        .filter((k) => /^features\.\d+$/.test(k))
        .sort()
        .map((k) => nchwToNhwc(fx.io[k]));
}

/**
 * Byte-identical check of two buffers (e.g. two safetensors files). The same strictness as
 * `expect(a).toEqual(b)`, without vitest's element-by-element deep equality (13 s for 1.2 MB on cpu);
 * on a mismatch it names the first differing byte.
 */
export function expectSameBytes(actual: Uint8Array, expected: Uint8Array, label = 'bytes'): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const same = Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(
    Buffer.from(expected.buffer, expected.byteOffset, expected.length),
  );
  if (!same) {
    let i = 0;
    while (actual[i] === expected[i]) i++;
    expect(actual[i], `${label}: first differing byte at ${i}`).toBe(expected[i]);
  }
  expect(same, label).toBe(true);
}
