import * as tf from '@tensorflow/tfjs';
import { gelu } from '../../layers/activations.js';
import { dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';

/** Options of {@link FeedForwardNetwork}. */
export interface FeedForwardOptions {
  dim: number;
  ffnDim: number;
  activation: 'gelu' | 'relu';
  /** Sub-LN: `ffn_layernorm` between the activation and `fc2`. */
  subln: boolean;
  eps: number;
  dropout?: number;
  activationDropout?: number;
}

/**
 * torchscale's `FeedForwardNetwork`: `fc2([ffn_layernorm](act(fc1(x))))` with exact erf GELU.
 * State-dict keys `fc1.*`, `ffn_layernorm.*` (sub-LN only), `fc2.*`.
 */
export class FeedForwardNetwork extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly ffnLayernorm: LayerNorm | null;
  constructor(readonly opts: FeedForwardOptions) {
    super();
    this.config = { ...opts };
    this.fc1 = this.addModule('fc1', new Linear(opts.dim, opts.ffnDim));
    this.fc2 = this.addModule('fc2', new Linear(opts.ffnDim, opts.dim));
    this.ffnLayernorm = opts.subln ? this.addModule('ffn_layernorm', new LayerNorm(opts.ffnDim, opts.eps)) : null;
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const z = this.fc1.forward(x);
      let h = this.opts.activation === 'gelu' ? gelu(z) : tf.relu(z);
      h = dropout(h, this.opts.activationDropout ?? 0, training);
      if (this.ffnLayernorm) h = this.ffnLayernorm.forward(h);
      return dropout(this.fc2.forward(h), this.opts.dropout ?? 0, training);
    });
  }
}
