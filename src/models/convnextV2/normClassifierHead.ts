import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { globalPool, PoolType } from '../../heads/classifierHead.js';
import { dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';

/** Options of {@link NormClassifierHead}. */
export interface NormClassifierHeadOptions {
  inChans: number;
  numClasses: number;
  poolType?: 'avg' | 'max' | 'avgmax';
  dropRate?: number;
  normEps?: number;
}

/**
 * ConvNeXt's head (timm's `NormMlpClassifierHead` without a hidden layer): global pool, LayerNorm over
 * channels, dropout, linear classifier. `numClasses = 0` stops after the norm. Takes an NHWC map (or
 * already pooled `[B, C]`). State-dict keys `norm.*`, `fc.*`.
 */
export class NormClassifierHead extends Module {
  readonly norm: LayerNorm;
  readonly fc: Linear | null;
  constructor(readonly opts: NormClassifierHeadOptions) {
    super();
    this.config = { ...opts };
    this.norm = this.addModule('norm', new LayerNorm(opts.inChans, opts.normEps ?? 1e-6));
    this.fc = opts.numClasses > 0 ? this.addModule('fc', new Linear(opts.inChans, opts.numClasses)) : null;
  }

  /** `preLogits`: the pooled, normalised features (timm's `pre_logits=True`). */
  forward(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    const c = x.shape[x.rank - 1];
    check(c === this.opts.inChans, () => `head expected ${this.opts.inChans} channels, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => {
      const y = this.norm.forward(globalPool(x, (this.opts.poolType ?? 'avg') as PoolType));
      const d = dropout(y, this.opts.dropRate ?? 0, opts.training ?? false);
      if (opts.preLogits || !this.fc) return d as tf.Tensor2D;
      return this.fc.forward(d) as tf.Tensor2D;
    });
  }
}
