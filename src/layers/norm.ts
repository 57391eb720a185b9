import * as tf from '@tensorflow/tfjs';
import { fusedLayerNormResidual } from '../backends/fusedLinear.js';
import { fusedLayerNorm } from '../backends/fusedOps.js';
import { check } from '../errors.js';
import { Module, Parameter } from './module.js';

/**
 * Layer normalisation over the last (channel) axis (Ba et al. 2016), `(x - mean) / sqrt(var + eps) * w + b`
 * with the biased variance, as PyTorch's `nn.LayerNorm`. On NHWC maps this is also timm's
 * `LayerNorm2d` (which normalises the channel axis of NCHW). The epsilon differs between models and
 * even between modules of one model, so it is always passed explicitly.
 */
export class LayerNorm extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    affine = true,
  ) {
    super();
    this.config = { dim, eps, affine };
    this.weight = affine ? this.addParameter('weight', tf.ones([dim])) : null;
    this.bias = affine ? this.addParameter('bias', tf.zeros([dim])) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const d = x.shape[x.rank - 1];
    check(d === this.dim, () => `LayerNorm expected ${this.dim} channels in the last axis, got ${d} (shape [${x.shape.join(', ')}])`);
    const fused = this.weight && this.bias ? fusedLayerNorm(x, this.weight.value, this.bias.value, this.eps) : null;
    if (fused) return fused;
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      if (this.weight) y = tf.mul(y, this.weight.value);
      if (this.bias) y = tf.add(y, this.bias.value);
      return y;
    });
  }
}

/**
 * `residual + norm.forward(x)`, as one kernel where the backend has it (webgpu with our kernels: Swin
 * V2's post-norm residual), else the norm then the add.
 */
export function layerNormAdd(norm: LayerNorm, x: tf.Tensor, residual: tf.Tensor): tf.Tensor {
  if (norm.weight && norm.bias && x.shape[x.rank - 1] === norm.dim) {
    const fused = fusedLayerNormResidual(x, norm.weight.value, norm.bias.value, norm.eps, residual);
    if (fused) return fused;
  }
  return tf.tidy(() => tf.add(residual, norm.forward(x)));
}

/** timm's `LayerNorm2d` name, kept for readers of timm code: on NHWC it is {@link LayerNorm}. */
export const LayerNorm2d = LayerNorm;
