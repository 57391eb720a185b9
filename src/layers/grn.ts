import * as tf from '@tensorflow/tfjs';
import { fusedGrn } from '../backends/fusedAttention.js';
import { check } from '../errors.js';
import { Module, Parameter } from './module.js';

/** Options of {@link GlobalResponseNorm}. */
export interface GlobalResponseNormOptions {
  /** Added to the channel mean of the norms (default 1e-6, as ConvNeXt V2 and timm). */
  eps?: number;
  /**
   * `true` (default): the input is channels-last `[B, H, W, C]` (NHWC, timm's `channels_last=True`);
   * `false`: channels-first `[B, C, H, W]` (timm's form inside a `conv_mlp` block on NCHW tensors).
   */
  channelsLast?: boolean;
}

/**
 * Global response normalization (ConvNeXt V2, Woo et al. 2023, sec. 3.2, eq. 1-3):
 * `G(x)_c = ||x_c||_2` over the spatial positions of channel `c` (eq. 1), `N(x)_c = G_c / (mean_c' G_c' + eps)`
 * (eq. 2), and `y = gamma * (x * N(x)) + beta + x` (eq. 3). State-dict keys `weight` (gamma) and `bias`
 * (beta), shape `[C]` (timm's `GlobalResponseNorm`; the official checkpoints' `(1, 1, 1, C)` tensors are
 * reshaped by the model's checkpoint filter). Both start at zero, so the layer starts as the identity.
 */
export class GlobalResponseNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly eps: number;
  readonly channelsLast: boolean;
  constructor(
    readonly dim: number,
    opts: GlobalResponseNormOptions = {},
  ) {
    super();
    this.config = { dim, ...opts };
    this.eps = opts.eps ?? 1e-6;
    this.channelsLast = opts.channelsLast ?? true;
    this.weight = this.addParameter('weight', tf.zeros([dim]));
    this.bias = this.addParameter('bias', tf.zeros([dim]));
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    const cl = this.channelsLast;
    check(
      x.rank === 4,
      () =>
        `GlobalResponseNorm expects a rank-4 ${cl ? 'NHWC [B, H, W, C]' : 'NCHW [B, C, H, W]'} tensor, got shape [${x.shape.join(', ')}]`,
    );
    const c = x.shape[cl ? 3 : 1];
    check(
      c === this.dim,
      () => `GlobalResponseNorm expected ${this.dim} channels on axis ${cl ? 3 : 1}, got ${c} (shape [${x.shape.join(', ')}])`,
    );
    // one kernel pair where the backend has it (webgpu with our kernels; inference only)
    const fused = cl ? fusedGrn(x, this.weight.value, this.bias.value, this.eps) : null;
    if (fused) return fused;
    return tf.tidy(() => {
      const spatial = cl ? [1, 2] : [2, 3];
      const wbShape = cl ? [1, 1, 1, this.dim] : [1, this.dim, 1, 1];
      const gx = tf.sqrt(tf.sum(tf.square(x), spatial, true)); // eq. 1, [B, 1, 1, C] / [B, C, 1, 1]
      const nx = tf.div(gx, tf.add(tf.mean(gx, cl ? 3 : 1, true), this.eps)); // eq. 2
      // eq. 3 as x * (1 + gamma * N) + beta: one pass over the map instead of three
      const scale = tf.add(tf.mul(this.weight.value.reshape(wbShape), nx), 1);
      return tf.add(tf.mul(x, scale), this.bias.value.reshape(wbShape)) as tf.Tensor4D;
    });
  }
}
