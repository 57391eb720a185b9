import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from './conv2d.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link ConvTokenEmbed}. */
export interface ConvTokenEmbedOptions {
  inChans: number;
  embedDim: number;
  /** Kernel size (default 7). */
  kernelSize?: number;
  /** Stride (default 4). */
  stride?: number;
  /** Zero padding (default 2). */
  padding?: number;
  normEps?: number;
}

/**
 * CSWin's convolutional token embedding (Dong et al. 2022, sec. 3.1): an overlapping `7 x 7` stride-4
 * convolution with padding 2, then LayerNorm over channels. NHWC in, NHWC out `[B, H', W', D]` with
 * `H' = floor((H + 2p - k) / s) + 1`. State-dict keys `0.*` (conv) and `2.*` (norm): the official
 * `nn.Sequential(conv, Rearrange, LayerNorm)`, whose index 1 has no parameters.
 */
export class ConvTokenEmbed extends Module {
  readonly conv: Conv2d;
  readonly norm: LayerNorm;
  constructor(readonly opts: ConvTokenEmbedOptions) {
    super();
    this.config = { ...opts };
    this.conv = this.addModule(
      '0',
      new Conv2d(opts.inChans, opts.embedDim, opts.kernelSize ?? 7, { stride: opts.stride ?? 4, padding: opts.padding ?? 2 }),
    );
    this.norm = this.addModule('2', new LayerNorm(opts.embedDim, opts.normEps ?? 1e-5));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.opts.inChans,
      () => `ConvTokenEmbed expects NHWC [B, H, W, ${this.opts.inChans}], got shape [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => this.norm.forward(this.conv.forward(x)) as tf.Tensor4D);
  }
}
