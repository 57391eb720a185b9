import * as tf from '@tensorflow/tfjs';
import { ActivationName, getActivation } from './activations.js';
import { dropout } from './dropPath.js';
import { Linear, linearGelu } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link Mlp}. */
export interface MlpOptions {
  hiddenFeatures?: number;
  outFeatures?: number;
  act?: ActivationName;
  bias?: boolean;
  drop?: number;
  /** LayerNorm over the hidden layer before `fc2` (timm's `norm_layer`) with this epsilon; default none. */
  normEps?: number | null;
}

/**
 * The transformer MLP `fc2(act(fc1(x)))` (Vaswani et al. 2017, sec. 3.3; timm's `Mlp`).
 * State-dict keys `fc1.*`, `fc2.*`.
 */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm | null;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly inFeatures: number,
    readonly opts: MlpOptions = {},
  ) {
    super();
    this.config = { inFeatures, ...opts };
    const hidden = opts.hiddenFeatures ?? inFeatures;
    const out = opts.outFeatures ?? inFeatures;
    this.fc1 = this.addModule('fc1', new Linear(inFeatures, hidden, { bias: opts.bias ?? true }));
    this.norm = opts.normEps != null ? this.addModule('norm', new LayerNorm(hidden, opts.normEps)) : null;
    this.fc2 = this.addModule('fc2', new Linear(hidden, out, { bias: opts.bias ?? true }));
    this.act = getActivation(opts.act ?? 'gelu');
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const p = this.opts.drop ?? 0;
    const t = opts.training ?? false;
    return tf.tidy(() => {
      // one kernel where the backend has it (webgpu with our kernels), else fc1 then the activation
      let h = ((this.opts.act ?? 'gelu') === 'gelu' ? linearGelu(this.fc1, x) : null) ?? this.act(this.fc1.forward(x));
      h = dropout(h, p, t);
      if (this.norm) h = this.norm.forward(h);
      return dropout(this.fc2.forward(h), p, t);
    });
  }
}
