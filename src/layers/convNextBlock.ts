import * as tf from '@tensorflow/tfjs';
import { fusedDwConvLayerNorm } from '../backends/fusedAttention.js';
import { fusedScaledResidual } from '../backends/fusedLinear.js';
import { check } from '../errors.js';
import { ActivationName } from './activations.js';
import { Conv2d } from './conv2d.js';
import { DropPath } from './dropPath.js';
import { GlobalResponseNormMlp } from './grnMlp.js';
import { Mlp } from './mlp.js';
import { ForwardOptions, Module, Parameter } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link ConvNeXtBlock} (timm's `ConvNeXtBlock` arguments, camelCase). */
export interface ConvNeXtBlockOptions {
  dim: number;
  /** Depthwise kernel size (default 7). */
  kernelSize?: number;
  dilation?: number;
  mlpRatio?: number;
  /** 1x1-conv MLP (timm's `conv_mlp`): changes only the state-dict layout of `mlp.fc1/fc2` here. */
  convMlp?: boolean;
  convBias?: boolean;
  /** GRN in the MLP (ConvNeXt V2). */
  useGrn?: boolean;
  /** Layer-scale init value; `null` disables layer scale (ConvNeXt V2). Default 1e-6 (ConvNeXt V1). */
  lsInitValue?: number | null;
  act?: ActivationName;
  /** LayerNorm epsilon (timm's default 1e-6). */
  normEps?: number;
  dropPath?: number;
}

/**
 * The ConvNeXt block (Liu et al. 2022, sec. 2.6 fig. 4; ConvNeXt V2, Woo et al. 2023, fig. 5) on NHWC
 * maps: depthwise `k x k` conv, LayerNorm over channels, pointwise MLP (4x, GELU, GRN in V2),
 * optional layer scale, drop path, residual. State-dict keys `conv_dw.*`, `norm.*`, `mlp.*` and `gamma`
 * when layer scale is on (timm's names).
 */
export class ConvNeXtBlock extends Module {
  readonly convDw: Conv2d;
  readonly norm: LayerNorm;
  readonly mlp: Mlp | GlobalResponseNormMlp;
  readonly gamma: Parameter | null;
  readonly dropPath: DropPath;
  constructor(readonly opts: ConvNeXtBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const k = opts.kernelSize ?? 7;
    const d = opts.dilation ?? 1;
    check(k % 2 === 1, () => `ConvNeXtBlock kernelSize must be odd (symmetric padding), got ${k}`);
    check(
      !opts.convMlp || opts.useGrn,
      () => 'ConvNeXtBlock: convMlp without useGrn (ConvNeXt V1 with 1x1-conv MLP) is not supported; use convMlp: false',
    );
    this.convDw = this.addModule(
      'conv_dw',
      new Conv2d(dim, dim, k, { padding: (d * (k - 1)) >> 1, dilation: d, groups: dim, bias: opts.convBias ?? true }),
    );
    this.norm = this.addModule('norm', new LayerNorm(dim, opts.normEps ?? 1e-6));
    const hidden = Math.floor((opts.mlpRatio ?? 4) * dim);
    this.mlp = this.addModule(
      'mlp',
      opts.useGrn
        ? new GlobalResponseNormMlp(dim, { hiddenFeatures: hidden, act: opts.act, useConv: opts.convMlp, bias: opts.convBias ?? true })
        : new Mlp(dim, { hiddenFeatures: hidden, act: opts.act, bias: opts.convBias ?? true }),
    );
    const ls = opts.lsInitValue === undefined ? 1e-6 : opts.lsInitValue;
    this.gamma = ls === null ? null : this.addParameter('gamma', tf.fill([dim], ls));
    this.dropPath = new DropPath(opts.dropPath ?? 0);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.opts.dim,
      () => `ConvNeXtBlock expects NHWC [B, H, W, ${this.opts.dim}], got shape [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      let y = this.convNorm(x);
      const noDrop = !opts.training || this.dropPath.p <= 0;
      // no layer scale, no drop path: the residual add in fc2's kernel where the backend has it (webgpu with our kernels)
      if (!this.gamma && noDrop && this.mlp instanceof GlobalResponseNormMlp) return this.mlp.forwardAdd(y, x, opts);
      y = this.mlp.forward(y, opts);
      // no drop path: x + gamma * y as one kernel where the backend has it (webgpu with our kernels)
      const fused = this.gamma && noDrop ? fusedScaledResidual(x, y, this.gamma.value) : null;
      if (fused) return fused as tf.Tensor4D;
      if (this.gamma) y = tf.mul(y, this.gamma.value);
      return tf.add(this.dropPath.forward(y, opts), x) as tf.Tensor4D;
    });
  }

  /** `norm(convDw(x))`, as one kernel where the backend has it (webgpu with our kernels; inference only). */
  private convNorm(x: tf.Tensor): tf.Tensor {
    const { convDw: cv, norm } = this;
    if (cv.mode === 'depthwise' && norm.weight && norm.bias) {
      const geo = { stride: cv.stride, dilation: cv.dilation, padding: cv.padding };
      const fused = fusedDwConvLayerNorm(x, cv.weight.value, cv.bias?.value ?? null, geo, norm.weight.value, norm.bias.value, norm.eps);
      if (fused) return fused;
    }
    return norm.forward(cv.forward(x));
  }
}
