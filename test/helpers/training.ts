import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { Module } from '../../src/layers/module.js';

/**
 * One optimizer step on `lossFn` over `module.trainableVariables()`, asserting that every trainable
 * variable gets a gradient that is neither null nor all zero. Returns the loss value.
 */
export function stepAndCheckGradients(module: Module, lossFn: () => tf.Scalar, optimizer: tf.Optimizer): number {
  const vars = module.trainableVariables();
  const names = module.namedParameters().filter(([, p]) => p.trainable).map(([n]) => n);
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const dead: string[] = [];
  vars.forEach((v, i) => {
    const g = grads[v.name];
    if (!g) dead.push(`${names[i]} (null)`);
    else if (tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) === 0) dead.push(`${names[i]} (all zero)`);
  });
  expect(dead, `variables without gradient: ${dead.join(', ')}`).toEqual([]);
  optimizer.applyGradients(grads);
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return loss;
}

/** A plain optimizer step (no checks) returning the loss. */
export function step(module: Module, lossFn: () => tf.Scalar, optimizer: tf.Optimizer): number {
  const loss = optimizer.minimize(lossFn, true, module.trainableVariables()) as tf.Scalar;
  const v = loss.dataSync()[0];
  loss.dispose();
  return v;
}
