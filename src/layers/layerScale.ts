import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Module, Parameter } from './module.js';

/**
 * Per-channel learnable scaling of a residual branch (CaiT, Touvron et al. 2021, sec. 2.1 "LayerScale":
 * `x + diag(gamma) * f(x)` with `gamma` initialised to a small constant). State-dict key `gamma` `[C]`
 * (timm's `LayerScale`).
 */
export class LayerScale extends Module {
  readonly gamma: Parameter;
  constructor(
    readonly dim: number,
    readonly initValues = 1e-5,
  ) {
    super();
    this.config = { dim, initValues };
    this.gamma = this.addParameter('gamma', tf.fill([dim], initValues));
  }
  forward(x: tf.Tensor): tf.Tensor {
    const c = x.shape[x.rank - 1];
    check(c === this.dim, () => `LayerScale expected ${this.dim} channels in the last axis, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.mul(x, this.gamma.value);
  }
}
