import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from './conv2d.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link OverlapPatchEmbed}. */
export interface OverlapPatchEmbedOptions {
  /** Kernel size `k` (7 for PVT v2's stem, 3 between stages); padding is `k // 2`. */
  patchSize: number;
  /** Stride (4 for the stem, 2 between stages); must be smaller than `patchSize`. */
  stride: number;
  inChans: number;
  embedDim: number;
  /** LayerNorm epsilon (PyTorch's `nn.LayerNorm` default 1e-5, as timm's PVT v2 uses here). */
  normEps?: number;
}

/**
 * Overlapping patch embedding of PVT v2 (Wang et al. 2022, sec. 3.1): a `k x k` convolution with
 * stride `s < k` and zero padding `k // 2`, so neighbouring patches share pixels, followed by
 * LayerNorm. NHWC in `[B, H, W, C]`, NHWC out `[B, floor((H - 1) / s) + 1, ..., D]`.
 * State-dict keys `proj.*`, `norm.*` (timm's `OverlapPatchEmbed`).
 */
export class OverlapPatchEmbed extends Module {
  readonly proj: Conv2d;
  readonly norm: LayerNorm;
  constructor(readonly opts: OverlapPatchEmbedOptions) {
    super();
    this.config = { ...opts };
    const { patchSize: k, stride: s } = opts;
    check(
      Number.isInteger(k) && Number.isInteger(s) && s > 0 && k > s,
      () => `OverlapPatchEmbed needs integer patchSize > stride > 0, got patchSize=${k}, stride=${s}`,
    );
    this.proj = this.addModule('proj', new Conv2d(opts.inChans, opts.embedDim, k, { stride: s, padding: Math.floor(k / 2) }));
    this.norm = this.addModule('norm', new LayerNorm(opts.embedDim, opts.normEps ?? 1e-5));
  }

  /** Output grid size for an input size. */
  outSize(size: number): number {
    return this.proj.outSize(size);
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    check(x.rank === 4, () => `OverlapPatchEmbed expects NHWC input [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    return tf.tidy(() => this.norm.forward(this.proj.forward(x)) as tf.Tensor4D);
  }
}
