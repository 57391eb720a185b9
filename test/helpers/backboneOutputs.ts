/**
 * What a backbone golden case pins down, computed on the active backend. Shared by the vitest parity
 * tests (`fixtureParity.ts`) and the WebGPU check (`gpu/webgpuCheck.ts`), which report differently
 * but must compare the same outputs. Framework-neutral: no vitest import.
 */
import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../../src/models/backbone.js';
import { Fixture, nchwToNhwc } from './fixtures.js';

/** The reference output `name` in our layout: NCHW maps become NHWC, tokens / vectors stay as stored. */
export function expectedOutput(fx: Fixture, name: string): tf.Tensor {
  return fx.case.layouts?.[name] === 'NCHW' ? nchwToNhwc(fx.io[name]) : fx.io[name].clone();
}

/** Number of `features.<i>` levels a case stores. */
export function featureLevels(fx: Fixture): number {
  return Object.keys(fx.io).filter((k) => k.startsWith('features.')).length;
}

/** One output to compare: our name for it, the tensor computed, the reference key it must match. */
export interface PinnedOutput {
  name: string;
  actual: tf.Tensor;
  ref: string;
}

/**
 * Run `model` (holding the case's weights) and `featuresOnly` (the same weights, every level) on `x`:
 * `logits`, `pre_logits`, `forward_features` (when the case stores it) and every `features.<i>`, from
 * `forwardIntermediates` and again from the featuresOnly model. `levels` says how many levels each
 * path returned (the caller checks it against {@link featureLevels}); dispose `outputs` when done.
 */
export function backboneOutputs(
  fx: Fixture,
  model: Backbone,
  featuresOnly: Backbone,
  x: tf.Tensor,
): { outputs: PinnedOutput[]; levels: [number, number]; dispose(): void } {
  const logits = model.forward(x) as tf.Tensor;
  const feats = model.forwardFeatures(x);
  const pre = model.forwardHead(feats, { preLogits: true });
  const stages = model.forwardIntermediates(x, { intermediatesOnly: true });
  const maps = featuresOnly.forward(x) as tf.Tensor4D[];
  const outputs: PinnedOutput[] = [
    { name: 'logits', actual: logits, ref: 'logits' },
    { name: 'pre_logits', actual: pre, ref: 'pre_logits' },
  ];
  if ('forward_features' in fx.io) outputs.push({ name: 'forward_features', actual: feats, ref: 'forward_features' });
  for (let i = 0; i < Math.min(stages.length, featureLevels(fx)); i++) {
    outputs.push({ name: `features.${i}`, actual: stages[i], ref: `features.${i}` });
    if (maps[i]) outputs.push({ name: `featuresOnly.${i}`, actual: maps[i], ref: `features.${i}` });
  }
  return { outputs, levels: [stages.length, maps.length], dispose: () => tf.dispose([logits, feats, pre, ...stages, ...maps]) };
}
