import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { uniform } from './init.js';
import { denseProduct } from './linear.js';
import { CONV, DEPTHWISE, Module, Parameter, patchLayout } from './module.js';

/** Options of {@link Conv2d} (PyTorch's `nn.Conv2d` arguments). */
export interface Conv2dOptions {
  stride?: number;
  /** Symmetric zero padding in pixels (PyTorch's integer `padding`). */
  padding?: number;
  dilation?: number;
  /** 1 (dense) or `inChans` (depthwise); other group counts are not supported. */
  groups?: number;
  bias?: boolean;
}

/**
 * 2-D convolution on NHWC maps with PyTorch's semantics and state-dict layout
 * (`weight` `[out, in/groups, kh, kw]`, `bias` `[out]`).
 *
 * A convolution whose kernel equals its stride (patch embedding, 1x1 projections, 2x2 downsampling)
 * is computed as patchify + one 2-D matmul: faster on wasm and differentiable on every backend
 * (tfjs-wasm has no `Conv2DBackpropFilter`).
 */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly groups: number;
  /** 'patch' = kernel == stride, no padding: patchify + matmul. */
  readonly mode: 'patch' | 'dense' | 'depthwise';

  constructor(
    readonly inChans: number,
    readonly outChans: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.config = { inChans, outChans, kernelSize, ...opts };
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.groups = opts.groups ?? 1;
    const k = kernelSize;
    check(
      this.groups === 1 || (this.groups === inChans && outChans % inChans === 0),
      () => `Conv2d supports groups = 1 or groups = inChans (depthwise); got groups=${this.groups} for ${inChans} -> ${outChans} channels`,
    );
    const fanIn = (inChans / this.groups) * k * k;
    const bound = 1 / Math.sqrt(fanIn);
    if (this.groups !== 1) {
      this.mode = 'depthwise';
      this.weight = this.addParameter('weight', uniform([k, k, inChans, outChans / inChans], bound), DEPTHWISE);
    } else if (k === this.stride && this.padding === 0 && this.dilation === 1) {
      this.mode = 'patch';
      this.weight = this.addParameter('weight', uniform([k * k * inChans, outChans], bound), patchLayout(k, k));
    } else {
      this.mode = 'dense';
      this.weight = this.addParameter('weight', uniform([k, k, inChans, outChans], bound), CONV);
    }
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', uniform([outChans], bound)) : null;
  }

  /** Output spatial size for an input size (PyTorch's formula). */
  outSize(size: number): number {
    return Math.floor((size + 2 * this.padding - this.dilation * (this.kernelSize - 1) - 1) / this.stride) + 1;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    check(x.rank === 4, () => `Conv2d expects an NHWC tensor of rank 4, got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    check(c === this.inChans, () => `Conv2d expected ${this.inChans} input channels, got ${c} (NHWC shape [${x.shape.join(', ')}])`);
    const ho = this.outSize(h);
    const wo = this.outSize(w);
    check(ho > 0 && wo > 0, () => `Conv2d: input ${h}x${w} is too small for kernel ${this.kernelSize} (padding ${this.padding})`);
    return tf.tidy(() => {
      let y: tf.Tensor4D;
      if (this.mode === 'patch') {
        const k = this.kernelSize;
        let xi = x as tf.Tensor4D;
        if (ho * k !== h || wo * k !== w) xi = tf.slice(xi, [0, 0, 0, 0], [b, ho * k, wo * k, c]);
        const cols =
          k === 1
            ? xi.reshape([b * ho * wo, c])
            : xi
                .reshape([b * ho, k, wo, k * c])
                .transpose([0, 2, 1, 3])
                .reshape([b * ho * wo, k * k * c]);
        // the bias goes into the product, exactly as Linear adds it (a 1x1 conv equals a Linear)
        return denseProduct(cols as tf.Tensor2D, this.weight.value as tf.Tensor2D, this.bias?.value ?? null).reshape([
          b,
          ho,
          wo,
          this.outChans,
        ]);
      } else {
        // the padding goes to the conv itself (no padded copy of the input: tfjs-wasm's PadV2 was a copy per
        // block, slower on threads); the zeros it skips add nothing, so the sums are the same
        const pad = this.padding > 0 ? this.padding : 'valid';
        const xi = x as tf.Tensor4D;
        y =
          this.mode === 'depthwise'
            ? tf.depthwiseConv2d(xi, this.weight.value as tf.Tensor4D, this.stride, pad, 'NHWC', this.dilation)
            : tf.conv2d(xi, this.weight.value as tf.Tensor4D, this.stride, pad, 'NHWC', this.dilation);
      }
      if (this.bias) y = tf.add(y, this.bias.value);
      return y;
    });
  }
}
