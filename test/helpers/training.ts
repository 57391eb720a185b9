import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { Module } from '../../src/layers/module.js';
import type { Backbone } from '../../src/models/backbone.js';
import { memorySpan } from '../../src/backends/memoryMeter.js';
import { mulberry32 } from '../../src/utils/random.js';

/** Options of {@link stepAndCheckGradients}. */
export interface StepCheckOptions {
  /** Prefix of the failure messages (e.g. the model and the backend). */
  label?: string;
  /** Also assert that the step changed the first trainable variable. */
  expectUpdate?: boolean;
}

/**
 * One optimizer step on `lossFn` over `module.trainableVariables()`, asserting that every trainable
 * variable gets a gradient that is neither null nor all zero and that the loss is finite (and, with
 * `expectUpdate`, that the step moved the first variable). Returns the loss value.
 */
export function stepAndCheckGradients(
  module: Module,
  lossFn: () => tf.Scalar,
  optimizer: tf.Optimizer,
  opts: StepCheckOptions = {},
): number {
  const prefix = opts.label ? `${opts.label}: ` : '';
  const vars = module.trainableVariables();
  const names = module
    .namedParameters()
    .filter(([, p]) => p.trainable)
    .map(([n]) => n);
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const dead: string[] = [];
  vars.forEach((v, i) => {
    const g = grads[v.name];
    if (!g) dead.push(`${names[i]} (null)`);
    else if (tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) === 0) dead.push(`${names[i]} (all zero)`);
  });
  expect(dead, `${prefix}variables without gradient: ${dead.join(', ')}`).toEqual([]);
  const loss = value.dataSync()[0];
  expect(Number.isFinite(loss), `${prefix}loss ${loss}`).toBe(true);
  const probe = opts.expectUpdate ? vars[0].clone() : null;
  optimizer.applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
  if (probe) {
    const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(vars[0], probe))).dataSync()[0]);
    probe.dispose();
    expect(moved, `${prefix}the step did not change ${names[0]}`).toBeGreaterThan(0);
  }
  return loss;
}

/**
 * One SGD step of a classifier `model` on input `x` with a loss that weights every logit differently
 * (a fixed random weight per logit): every parameter is trainable and gets a gradient that is neither
 * null nor all zero, the step changes the weights, and no tensor leaks. `label` names the case in failures.
 */
export function checkBackboneTrainingStep(model: Backbone, x: tf.Tensor, label: string): void {
  expect(model.trainableVariables().length, `${label}: every parameter is trainable`).toBe(model.namedParameters().length);
  const w = tf.randomNormal([x.shape[0], model.numClasses], 0, 1, 'float32', 7);
  const opt = tf.train.sgd(0.01);
  const before = tf.memory().numTensors;
  const loss = () => tf.sum(tf.mul(model.forward(x, { training: true }) as tf.Tensor, w)) as tf.Scalar;
  stepAndCheckGradients(model, loss, opt, { label, expectUpdate: true });
  expect(tf.memory().numTensors, `${label}: tensors leaked by the training step`).toBe(before);
  tf.dispose(w);
  opt.dispose();
}

/** A plain optimizer step (no checks) returning the loss. */
export function step(module: Module, lossFn: () => tf.Scalar, optimizer: tf.Optimizer): number {
  const loss = optimizer.minimize(lossFn, true, module.trainableVariables()) as tf.Scalar;
  const v = loss.dataSync()[0];
  loss.dispose();
  return v;
}

/**
 * `steps` optimizer steps on `lossFn`: the first through {@link stepAndCheckGradients} under
 * `tf.profile`, the others through {@link step}. Asserts that no step changes `tf.memory().numTensors`
 * (so use an optimizer without slot variables, e.g. SGD). Returns the loss of every step and the names
 * of the kernels the first step ran.
 */
export async function trainSteps(
  module: Module,
  lossFn: () => tf.Scalar,
  optimizer: tf.Optimizer,
  steps: number,
): Promise<{ losses: number[]; kernels: Set<string> }> {
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  const prof = await tf.profile(() => {
    losses.push(stepAndCheckGradients(module, lossFn, optimizer));
  });
  expect(tf.memory().numTensors, 'tensors leaked by step 0').toBe(before);
  for (let s = 1; s < steps; s++) {
    losses.push(step(module, lossFn, optimizer));
    expect(tf.memory().numTensors, `tensors leaked by step ${s}`).toBe(before);
  }
  return { losses, kernels: new Set(prof.kernels.map((k) => k.name)) };
}

/** A seeded input of `shape`, uniform in [-1, 1). */
export function randomInput(shape: number[], seed: number): tf.Tensor {
  const rand = mulberry32(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rand() * 2 - 1),
    shape,
  );
}

/** What {@link gradientPass} measured. */
export interface GradientPass {
  /** Gradient values by parameter name (parameters `run` does not reach get none). */
  grads: Record<string, Float32Array>;
  loss: number;
  /** Peak of the distinct data buffers during the pass (views of a buffer are not counted again). */
  peakBytes: number;
  /** Tensors left behind by the pass. */
  leaked: number;
}

/** `mean(run(x)^2)` and its gradients for every trainable parameter of `model`, with the pass's peak memory. */
export function gradientPass(model: Module, x: tf.Tensor, run: (x: tf.Tensor) => tf.Tensor): GradientPass {
  const vars = model.namedParameters().filter(([, p]) => p.trainable);
  const before = tf.memory().numTensors;
  // distinct data buffers: tf.memory() bytes (and tf.profile's peak) count every view of a buffer again
  const span = memorySpan();
  const { value, grads } = tf.variableGrads(
    () => tf.tidy(() => tf.mean(tf.square(run(x)))) as tf.Scalar,
    vars.map(([, p]) => p.variable),
  );
  const peakBytes = span.stop().peakDataBytes;
  const out: Record<string, Float32Array> = {};
  for (const [k, p] of vars) if (grads[p.variable.name]) out[k] = grads[p.variable.name].dataSync() as Float32Array;
  const loss = value.dataSync()[0];
  value.dispose();
  tf.dispose(grads);
  return { grads: out, loss, peakBytes, leaked: tf.memory().numTensors - before };
}
