import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { biasMaskSoftmax, mergeHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { truncNormal } from './init.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module, Parameter } from './module.js';
import { gatherRelativeBias, relativePositionIndex } from './relativePosition.js';

/** Options of {@link WindowAttention}. */
export interface WindowAttentionOptions {
  dim: number;
  numHeads: number;
  /** `[wh, ww]` window size. */
  windowSize: [number, number];
  qkvBias?: boolean;
  attnDrop?: number;
  projDrop?: number;
  /** Attention scale instead of `headDim ** -0.5` (the reference's `qk_scale`; null or 0 = default). */
  qkScale?: number | null;
}

/**
 * Window multi-head self-attention with a learned relative position bias (Swin, Liu et al. 2021,
 * sec. 3.2 eq. 4): `softmax(q k^T / sqrt(d) + B + M) v` over the tokens of each window, where B is
 * gathered from a `(2wh - 1)(2ww - 1) x heads` table and M is the shifted-window mask.
 * Input `[B * nW, N, C]`. State-dict keys `qkv.*`, `proj.*`, `relative_position_bias_table`
 * (timm's `WindowAttention`).
 */
export class WindowAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly relativePositionBiasTable: Parameter;
  readonly relativePositionIndex: tf.Tensor1D;
  readonly headDim: number;
  readonly scale: number;
  constructor(readonly opts: WindowAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, windowSize } = opts;
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.headDim = dim / numHeads;
    this.scale = opts.qkScale || this.headDim ** -0.5;
    const [wh, ww] = windowSize;
    this.relativePositionBiasTable = this.addParameter(
      'relative_position_bias_table',
      truncNormal([(2 * wh - 1) * (2 * ww - 1), numHeads], 0.02),
    );
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: opts.qkvBias ?? true }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
    this.relativePositionIndex = this.addBuffer('relative_position_index', tf.tensor1d(relativePositionIndex(wh, ww), 'int32'));
  }

  /** The `[heads, N, N]` relative position bias. */
  relativePositionBias(): tf.Tensor3D {
    const [wh, ww] = this.opts.windowSize;
    return gatherRelativeBias(this.relativePositionBiasTable.value, this.relativePositionIndex, wh * ww);
  }

  /** `x`: `[B * nW, N, C]` windows; `mask`: `[nW, N, N]` or null. */
  forward(x: tf.Tensor, opts: ForwardOptions & { mask?: tf.Tensor | null } = {}): tf.Tensor3D {
    const [bw, n, c] = x.shape;
    const heads = this.opts.numHeads;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const [q, k, v] = splitQkv(this.qkv.forward(x), bw, n, heads);
      let attn: tf.Tensor = tf.matMul(tf.mul(q, this.scale), k, false, true);
      attn = dropout(biasMaskSoftmax(attn, this.relativePositionBias(), opts.mask ?? null, heads), this.opts.attnDrop ?? 0, training);
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), bw, heads);
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training).reshape([bw, n, c]) as tf.Tensor3D;
    });
  }
}
