import * as tf from '@tensorflow/tfjs';
import { fusedAttentionCore, fusedAttentionQkv } from '../backends/fusedAttention.js';
import { check } from '../errors.js';
import { mergeHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link QkvAttention}: the parts timm's `Attention` classes share. */
export interface QkvAttentionOptions {
  dim: number;
  numHeads: number;
  /** Bias of the fused qkv projection. */
  qkvBias: boolean;
  /** LayerNorm over the head dimension of q and k (`qk_norm`). */
  qkNorm?: boolean;
  /** LayerNorm of the attention output before the projection (`scale_norm`). */
  scaleNorm?: boolean;
  /** Bias of the output projection (default true). */
  projBias?: boolean;
  attnDrop?: number;
  projDrop?: number;
  /** Epsilon of the q/k and scale norms. */
  normEps: number;
}

/**
 * Multi-head attention with a fused qkv projection (Vaswani et al. 2017, sec. 3.2.2):
 * `proj(softmax(q k^T / sqrt(d) + bias) v)`, the core that {@link SelfAttention} (ViT) and
 * {@link RelPosAttention} (ViTDet) share. Children in timm's order and names: `qkv`, `q_norm`, `k_norm`,
 * `norm`, `proj`. Subclasses check and shape the input and call {@link attend}.
 */
export abstract class QkvAttention extends Module {
  readonly qkv: Linear;
  readonly qNorm: LayerNorm | null;
  readonly kNorm: LayerNorm | null;
  readonly norm: LayerNorm | null;
  readonly proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;
  readonly scale: number;
  private readonly attnDrop: number;
  private readonly projDrop: number;
  constructor(core: QkvAttentionOptions) {
    super();
    const { dim, numHeads } = core;
    check(Number.isInteger(numHeads) && numHeads > 0, () => `numHeads must be a positive integer, got ${numHeads}`);
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.numHeads = numHeads;
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    this.attnDrop = core.attnDrop ?? 0;
    this.projDrop = core.projDrop ?? 0;
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: core.qkvBias }));
    this.qNorm = core.qkNorm ? this.addModule('q_norm', new LayerNorm(this.headDim, core.normEps)) : null;
    this.kNorm = core.qkNorm ? this.addModule('k_norm', new LayerNorm(this.headDim, core.normEps)) : null;
    this.norm = core.scaleNorm ? this.addModule('norm', new LayerNorm(dim, core.normEps)) : null;
    this.proj = this.addModule('proj', new Linear(dim, dim, { bias: core.projBias ?? true }));
  }

  /**
   * Attention over `b` sequences of `n` tokens, `x` `[b * n, C]` or `[b, n, C]` -> `[b, n, C]`;
   * `bias(logits, q)` adds position terms to the scaled logits `[b * heads, n, n]` before the softmax.
   */
  protected attend(
    x: tf.Tensor,
    b: number,
    n: number,
    training: boolean,
    bias?: (logits: tf.Tensor3D, q: tf.Tensor3D) => tf.Tensor,
  ): tf.Tensor3D {
    return tf.tidy(() => {
      const qkv = this.qkv.forward(x);
      const plain = !bias && !(training && this.attnDrop > 0);
      // the whole core, from qkv to merged heads, in one kernel where the backend has it (webgpu with our kernels; inference only)
      let o: tf.Tensor | null =
        plain && !this.qNorm && !this.kNorm ? fusedAttentionQkv(qkv, b, n, { heads: this.numHeads, scale: this.scale }) : null;
      if (!o) {
        let [q, k, v] = splitQkv(qkv, b, n, this.numHeads);
        if (this.qNorm) q = this.qNorm.forward(q) as tf.Tensor3D;
        if (this.kNorm) k = this.kNorm.forward(k) as tf.Tensor3D;
        const core = plain ? fusedAttentionCore(q, k, v, { heads: this.numHeads, scale: this.scale }) : null;
        if (core) o = mergeHeads(core, b, this.numHeads);
        else {
          let logits: tf.Tensor = tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true);
          if (bias) logits = bias(logits as tf.Tensor3D, q);
          const attn = dropout(tf.softmax(logits), this.attnDrop, training);
          o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, this.numHeads);
        }
      }
      if (this.norm) o = this.norm.forward(o);
      return dropout(this.proj.forward(o), this.projDrop, training) as tf.Tensor3D;
    });
  }
}
