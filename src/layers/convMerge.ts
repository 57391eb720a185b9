import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from './conv2d.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link ConvMerge}. */
export interface ConvMergeOptions {
  dim: number;
  /** Output width (default `2 * dim`). */
  outDim?: number;
  normEps?: number;
}

/**
 * CSWin's convolutional token merging between stages (Dong et al. 2022, sec. 3.1, the official
 * `Merge_Block`): a `3 x 3` stride-2 convolution with padding 1 (halving the resolution, doubling the
 * width), then LayerNorm. NHWC in and out. State-dict keys `conv.*`, `norm.*`.
 */
export class ConvMerge extends Module {
  readonly conv: Conv2d;
  readonly norm: LayerNorm;
  readonly outDim: number;
  constructor(readonly opts: ConvMergeOptions) {
    super();
    this.config = { ...opts };
    this.outDim = opts.outDim ?? 2 * opts.dim;
    this.conv = this.addModule('conv', new Conv2d(opts.dim, this.outDim, 3, { stride: 2, padding: 1 }));
    this.norm = this.addModule('norm', new LayerNorm(this.outDim, opts.normEps ?? 1e-5));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.opts.dim,
      () => `ConvMerge expects NHWC [B, H, W, ${this.opts.dim}], got shape [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => this.norm.forward(this.conv.forward(x)) as tf.Tensor4D);
  }
}
