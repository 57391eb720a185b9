import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { gelu } from './activations.js';
import { Conv2d } from './conv2d.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';

/** Options of {@link MlpWithDepthwiseConv}. */
export interface MlpWithDepthwiseConvOptions {
  hiddenFeatures?: number;
  outFeatures?: number;
  /** ReLU after `fc1` (PVT v2's linear variant, "PVTv2-Li"). */
  extraRelu?: boolean;
  drop?: number;
}

/**
 * PVT v2's convolutional feed-forward network (Wang et al. 2022, sec. 3.2): `fc1 -> (ReLU) ->
 * depthwise 3x3 conv (padding 1, with bias) -> GELU -> fc2`, the depthwise conv giving the MLP
 * local context in place of a position embedding. Works on NHWC maps `[B, H, W, C]`, so the conv
 * needs no reshaping. State-dict keys `fc1.*`, `dwconv.*`, `fc2.*` (timm's `MlpWithDepthwiseConv`).
 */
export class MlpWithDepthwiseConv extends Module {
  readonly fc1: Linear;
  readonly dwconv: Conv2d;
  readonly fc2: Linear;
  constructor(
    readonly inFeatures: number,
    readonly opts: MlpWithDepthwiseConvOptions = {},
  ) {
    super();
    this.config = { inFeatures, ...opts };
    const hidden = opts.hiddenFeatures ?? inFeatures;
    this.fc1 = this.addModule('fc1', new Linear(inFeatures, hidden));
    this.dwconv = this.addModule('dwconv', new Conv2d(hidden, hidden, 3, { stride: 1, padding: 1, groups: hidden }));
    this.fc2 = this.addModule('fc2', new Linear(hidden, opts.outFeatures ?? inFeatures));
  }

  /** `x`: NHWC `[B, H, W, C]`; returns `[B, H, W, outFeatures]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    check(x.rank === 4, () => `MlpWithDepthwiseConv expects an NHWC map [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const p = this.opts.drop ?? 0;
    const t = opts.training ?? false;
    return tf.tidy(() => {
      let h = this.fc1.forward(x);
      if (this.opts.extraRelu) h = tf.relu(h);
      h = dropout(gelu(this.dwconv.forward(h)), p, t);
      return dropout(this.fc2.forward(h), p, t) as tf.Tensor4D;
    });
  }
}
