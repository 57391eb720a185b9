import * as tf from '@tensorflow/tfjs';
import { randomUniform01 } from './init.js';
import { ForwardOptions, Module } from './module.js';

/**
 * Stochastic depth (Huang et al. 2016, sec. 3): in training, zero a residual branch per sample with
 * probability `p` and scale the survivors by `1 / (1 - p)`; the identity in eval. The per-sample
 * draws come from the global seeded generator (`manualSeed`), so training runs are reproducible.
 */
export function dropPath(x: tf.Tensor, p: number, training: boolean): tf.Tensor {
  if (!training || p <= 0) return x.clone();
  return tf.tidy(() => {
    const keep = 1 - p;
    const b = x.shape[0];
    const scale = new Float32Array(b);
    for (let i = 0; i < b; i++) scale[i] = Math.floor(randomUniform01() + keep) / keep;
    const shape = [b, ...new Array(x.rank - 1).fill(1)];
    return tf.mul(x, tf.tensor(scale, shape));
  });
}

/** {@link dropPath} as a module (timm's `DropPath`). */
export class DropPath extends Module {
  constructor(readonly p = 0) {
    super();
    this.config = { p };
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    return dropPath(x, this.p, opts.training ?? false);
  }
}

/** Linearly increasing drop-path rates over all blocks (timm's `calculate_drop_path_rates`), split per stage. */
export function dropPathRates(rate: number, depths: number[]): number[][] {
  const total = depths.reduce((a, b) => a + b, 0);
  const all = Array.from({ length: total }, (_, i) => (total > 1 ? (rate * i) / (total - 1) : 0));
  const out: number[][] = [];
  let k = 0;
  for (const d of depths) {
    out.push(all.slice(k, k + d));
    k += d;
  }
  return out;
}

/** Dropout that is active only in training. */
export function dropout(x: tf.Tensor, p: number, training: boolean): tf.Tensor {
  if (!training || p <= 0) return x.clone();
  return tf.dropout(x, p);
}
