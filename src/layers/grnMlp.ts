import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ActivationName, getActivation } from './activations.js';
import { Conv2d } from './conv2d.js';
import { dropout } from './dropPath.js';
import { GlobalResponseNorm } from './grn.js';
import { Linear, linearAdd, linearGelu } from './linear.js';
import { ForwardOptions, Module } from './module.js';

/** Options of {@link GlobalResponseNormMlp}. */
export interface GlobalResponseNormMlpOptions {
  hiddenFeatures?: number;
  outFeatures?: number;
  act?: ActivationName;
  bias?: boolean;
  drop?: number;
  /**
   * timm's `use_conv` (ConvNeXt's `conv_mlp`): `fc1`/`fc2` are 1x1 convolutions whose state-dict
   * weights are `[out, in, 1, 1]` instead of Linear's `[out, in]`. The computation is the same.
   */
  useConv?: boolean;
  grnEps?: number;
}

/**
 * The ConvNeXt V2 block MLP (Woo et al. 2023, sec. 3.2, fig. 5): `fc2(GRN(act(fc1(x))))` on an NHWC map
 * (timm's `GlobalResponseNormMlp`). State-dict keys `fc1.*`, `grn.weight`, `grn.bias`, `fc2.*`.
 */
export class GlobalResponseNormMlp extends Module {
  readonly fc1: Linear | Conv2d;
  readonly grn: GlobalResponseNorm;
  readonly fc2: Linear | Conv2d;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly inFeatures: number,
    readonly opts: GlobalResponseNormMlpOptions = {},
  ) {
    super();
    this.config = { inFeatures, ...opts };
    const hidden = opts.hiddenFeatures ?? inFeatures;
    const out = opts.outFeatures ?? inFeatures;
    const bias = opts.bias ?? true;
    const layer = (i: number, o: number) => (opts.useConv ? new Conv2d(i, o, 1, { bias }) : new Linear(i, o, { bias }));
    this.fc1 = this.addModule('fc1', layer(inFeatures, hidden));
    this.act = getActivation(opts.act ?? 'gelu');
    this.grn = this.addModule('grn', new GlobalResponseNorm(hidden, { eps: opts.grnEps ?? 1e-6 }));
    this.fc2 = this.addModule('fc2', layer(hidden, out));
  }

  /** `fc1` or `fc2` as a Linear (a 1x1 conv in patch mode is the same `[in, out]` product), else null. */
  private static dense(fc: Linear | Conv2d): Pick<Linear, 'weight' | 'bias' | 'inFeatures' | 'outFeatures'> | null {
    if (fc instanceof Linear) return fc;
    return fc.mode === 'patch' && fc.kernelSize === 1
      ? { weight: fc.weight, bias: fc.bias, inFeatures: fc.inChans, outFeatures: fc.outChans }
      : null;
  }

  /** `x`: NHWC `[B, H, W, C]` (GRN pools over H and W). */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return this.run(x, null, opts);
  }

  /**
   * `residual + forward(x)` (the block's residual add), with the add in fc2's kernel where the backend
   * has one (webgpu with our kernels) and no dropout is active; `residual` has the output's shape.
   */
  forwardAdd(x: tf.Tensor, residual: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return this.run(x, residual, opts);
  }

  private run(x: tf.Tensor, residual: tf.Tensor | null, opts: ForwardOptions): tf.Tensor4D {
    check(x.rank === 4, () => `GlobalResponseNormMlp expects an NHWC map [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const p = this.opts.drop ?? 0;
    const t = opts.training ?? false;
    return tf.tidy(() => {
      // one kernel where the backend has it (webgpu with our kernels), else fc1 then the activation
      const fc1 = GlobalResponseNormMlp.dense(this.fc1);
      const fused = (this.opts.act ?? 'gelu') === 'gelu' && fc1 ? linearGelu(fc1, x) : null;
      let h = dropout(fused ?? this.act(this.fc1.forward(x)), p, t);
      h = this.grn.forward(h);
      if (!residual) return dropout(this.fc2.forward(h), p, t) as tf.Tensor4D;
      const fc2 = GlobalResponseNormMlp.dense(this.fc2);
      const added = fc2 && (p <= 0 || !t) ? linearAdd(fc2, h, residual) : null;
      return (added ?? tf.add(dropout(this.fc2.forward(h), p, t), residual)) as tf.Tensor4D;
    });
  }
}
