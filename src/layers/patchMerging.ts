import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Linear } from './linear.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link PatchMerging}. */
export interface PatchMergingOptions {
  dim: number;
  outDim?: number;
  /** 'pre' (Swin: norm(4C) then reduction) or 'post' (SwinV2: reduction then norm(2C)). */
  normPosition?: 'pre' | 'post';
  normEps?: number;
}

/**
 * Swin's patch merging (Liu et al. 2021, sec. 3.1): concatenate each 2x2 neighbourhood (order
 * x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) into 4C channels and project to 2C
 * without bias. SwinV2 moves the norm after the projection (sec. 3.1, res-post-norm).
 * NHWC in and out. State-dict keys `norm.*`, `reduction.weight`.
 */
export class PatchMerging extends Module {
  readonly norm: LayerNorm;
  readonly reduction: Linear;
  readonly outDim: number;
  constructor(readonly opts: PatchMergingOptions) {
    super();
    this.config = { ...opts };
    this.outDim = opts.outDim ?? 2 * opts.dim;
    const post = opts.normPosition === 'post';
    this.reduction = this.addModule('reduction', new Linear(4 * opts.dim, this.outDim, { bias: false }));
    this.norm = this.addModule('norm', new LayerNorm(post ? this.outDim : 4 * opts.dim, opts.normEps ?? 1e-5));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    check(c === this.opts.dim, () => `PatchMerging expected ${this.opts.dim} channels, got ${c}`);
    check(h % 2 === 0 && w % 2 === 0, () => `PatchMerging needs an even resolution, got ${h}x${w}`);
    return tf.tidy(() => {
      // [B*H/2, 2(h-off), W, C] -> [B*H/2, W, 2(h-off), C]: channel order (w-off, h-off, c)
      const m = x
        .reshape([(b * h) / 2, 2, w, c])
        .transpose([0, 2, 1, 3])
        .reshape([b, h / 2, w / 2, 4 * c]);
      const y =
        this.opts.normPosition === 'post' ? this.norm.forward(this.reduction.forward(m)) : this.reduction.forward(this.norm.forward(m));
      return y as tf.Tensor4D;
    });
  }
}
