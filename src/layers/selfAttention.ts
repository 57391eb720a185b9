import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link SelfAttention} (timm's `Attention` arguments). */
export interface SelfAttentionOptions {
  dim: number;
  numHeads: number;
  /** Bias of the fused qkv projection (timm's default false; ViT passes true). */
  qkvBias?: boolean;
  /** LayerNorm over the head dimension of q and k (ViT-22B style `qk_norm`). */
  qkNorm?: boolean;
  /** LayerNorm of the attention output before the projection (`scale_norm`). */
  scaleNorm?: boolean;
  projBias?: boolean;
  attnDrop?: number;
  projDrop?: number;
  /** Epsilon of the q/k and scale norms (timm ViT: 1e-6). */
  normEps?: number;
}

/**
 * Multi-head self-attention with a fused qkv projection (Vaswani et al. 2017, sec. 3.2.2;
 * ViT sec. 3.1 eq. 2-3): `proj(softmax(q k^T / sqrt(d)) v)` over all tokens of `[B, N, C]`.
 * State-dict keys `qkv.*`, `q_norm.*`, `k_norm.*`, `norm.*`, `proj.*` (timm's `Attention`).
 */
export class SelfAttention extends Module {
  readonly qkv: Linear;
  readonly qNorm: LayerNorm | null;
  readonly kNorm: LayerNorm | null;
  readonly norm: LayerNorm | null;
  readonly proj: Linear;
  readonly headDim: number;
  readonly scale: number;
  constructor(readonly opts: SelfAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads } = opts;
    check(Number.isInteger(numHeads) && numHeads > 0, () => `numHeads must be a positive integer, got ${numHeads}`);
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    const eps = opts.normEps ?? 1e-6;
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: opts.qkvBias ?? false }));
    this.qNorm = opts.qkNorm ? this.addModule('q_norm', new LayerNorm(this.headDim, eps)) : null;
    this.kNorm = opts.qkNorm ? this.addModule('k_norm', new LayerNorm(this.headDim, eps)) : null;
    this.norm = opts.scaleNorm ? this.addModule('norm', new LayerNorm(dim, eps)) : null;
    this.proj = this.addModule('proj', new Linear(dim, dim, { bias: opts.projBias ?? true }));
  }

  /** `x`: `[B, N, C]` tokens -> `[B, N, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    check(x.rank === 3 && x.shape[2] === this.opts.dim, () => `SelfAttention expects [B, N, ${this.opts.dim}] tokens, got shape [${x.shape.join(', ')}]`);
    const [b, n, c] = x.shape;
    const heads = this.opts.numHeads;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let [q, k, v] = splitQkv(this.qkv.forward(x), b, n, heads);
      if (this.qNorm) q = this.qNorm.forward(q) as tf.Tensor3D;
      if (this.kNorm) k = this.kNorm.forward(k) as tf.Tensor3D;
      const attn = dropout(tf.softmax(tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true)), this.opts.attnDrop ?? 0, training);
      let o: tf.Tensor = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, heads);
      if (this.norm) o = this.norm.forward(o);
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training).reshape([b, n, c]) as tf.Tensor3D;
    });
  }
}
