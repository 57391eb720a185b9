import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import type { Module } from '../../src/layers/module.js';
import { StepInfo } from '../../src/train/trainer.js';

/** A tiny Swin geometry: 32 px, patch 4, window 4, two stages (the first with a shifted block), stride 8. */
export const TINY_SWIN = { imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 1], numHeads: [1, 2], windowSize: 4, numClasses: 0 };

/** Smooth random images in [-1, 1] (seeded): noise on a grid of `cell`-pixel cells, bilinearly upsampled, so reconstruction is learnable. */
export function smoothImages(b: number, size: number, seed: number, c = 3, cell = 4): tf.Tensor4D {
  return tf.tidy(() => {
    const coarse = tf.randomUniform([b, size / cell, size / cell, c], -1, 1, 'float32', seed) as tf.Tensor4D;
    return tf.image.resizeBilinear(coarse, [size, size], false, true) as tf.Tensor4D;
  });
}

/** Reset the global init RNG so every model build is reproducible. */
export function seeded<T>(seed: number, build: () => T): T {
  manualSeed(seed);
  return build();
}

/** Mean of the first and last `k` losses of a run. */
export function firstLast(infos: StepInfo[], k = 5): { first: number; last: number } {
  const m = (a: StepInfo[]) => a.reduce((s, i) => s + i.loss, 0) / a.length;
  return { first: m(infos.slice(0, k)), last: m(infos.slice(-k)) };
}

/** Assert that every trainable parameter of `module` gets a non-zero, finite gradient from `lossFn`. */
export function expectGradientsEverywhere(module: Module, lossFn: () => tf.Scalar): void {
  const named = module.namedParameters().filter(([, p]) => p.trainable);
  const vars = named.map(([, p]) => p.variable);
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(lossFn, vars);
  const dead: string[] = [];
  named.forEach(([n, p]) => {
    const g = grads[p.variable.name];
    if (!g) dead.push(`${n} (null)`);
    else {
      const m = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]);
      if (!(m > 0) || !Number.isFinite(m)) dead.push(`${n} (max |g| = ${m})`);
    }
  });
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(before);
  expect(dead, `variables without gradient: ${dead.join(', ')}`).toEqual([]);
}

/** A tiny ViT: 32 px, patch 8 (4x4 grid), width 16, 2 blocks, class token. */
export const TINY_VIT = { imgSize: 32, patchSize: 8, embedDim: 16, depth: 2, numHeads: 2, numClasses: 0 };
