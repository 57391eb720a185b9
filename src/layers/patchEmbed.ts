import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from './conv2d.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link PatchEmbed}. */
export interface PatchEmbedOptions {
  patchSize: number;
  inChans: number;
  embedDim: number;
  /** Add a LayerNorm after the projection (Swin does; ViT does not). */
  norm?: boolean;
  normEps?: number;
  bias?: boolean;
}

/**
 * Image to patch embedding (Dosovitskiy et al. 2021, sec. 3.1): a non-overlapping `p x p` convolution,
 * computed as patchify + matmul, optionally followed by LayerNorm. Input NHWC `[B, H, W, C]`, output
 * NHWC `[B, H/p, W/p, D]`. State-dict keys `proj.*`, `norm.*` (timm's `PatchEmbed`).
 */
export class PatchEmbed extends Module {
  readonly proj: Conv2d;
  readonly norm: LayerNorm | null;
  constructor(readonly opts: PatchEmbedOptions) {
    super();
    this.config = { ...opts };
    this.proj = this.addModule(
      'proj',
      new Conv2d(opts.inChans, opts.embedDim, opts.patchSize, { stride: opts.patchSize, bias: opts.bias ?? true }),
    );
    this.norm = opts.norm ? this.addModule('norm', new LayerNorm(opts.embedDim, opts.normEps ?? 1e-5)) : null;
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    check(x.rank === 4, () => `PatchEmbed expects NHWC input [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const [, h, w, c] = x.shape;
    const p = this.opts.patchSize;
    check(
      c === this.opts.inChans,
      () => `expected ${this.opts.inChans} input channels (NHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`,
    );
    check(h % p === 0 && w % p === 0, () => `image size ${h}x${w} is not divisible by the patch size ${p}`);
    return tf.tidy(() => {
      const y = this.proj.forward(x);
      return (this.norm ? this.norm.forward(y) : y) as tf.Tensor4D;
    });
  }
}
