import * as tf from '@tensorflow/tfjs';
import { randomUniform01 } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';

/**
 * Re-initialise every Linear of `module` (except those inside `skip`) as the MAE / MixMIM / MILAN
 * decoders do (`_init_weights`): xavier-uniform weight (Glorot & Bengio 2010, eq. 16), zero bias. Draws
 * from the global seeded init generator (`manualSeed`).
 */
export function xavierInitLinears(module: Module, skip: Module[] = []): void {
  const skipped = new Set<Module>();
  for (const s of skip) for (const [, m] of s.namedModules()) skipped.add(m);
  for (const [, m] of module.namedModules()) {
    if (!(m instanceof Linear) || skipped.has(m)) continue;
    const bound = Math.sqrt(6 / (m.inFeatures + m.outFeatures));
    const n = m.inFeatures * m.outFeatures;
    const w = new Float32Array(n);
    for (let i = 0; i < n; i++) w[i] = (randomUniform01() * 2 - 1) * bound;
    tf.tidy(() => {
      m.weight.variable.assign(tf.tensor2d(w, [m.inFeatures, m.outFeatures]));
      if (m.bias) m.bias.variable.assign(tf.zeros([m.outFeatures]));
    });
  }
}
