import * as tf from '@tensorflow/tfjs';
import { mergeHeads, splitHeads } from '../../layers/attention.js';
import { dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { Experts, multiwayWrapper, runExperts } from './multiway.js';

/** Options of {@link MultiwayAttention}. */
export interface MultiwayAttentionOptions {
  dim: number;
  numHeads: number;
  multiway: boolean;
  /** Sub-LN: a LayerNorm on the attention output before `out_proj` (`inner_attn_ln`). */
  subln: boolean;
  eps: number;
  attnDrop?: number;
}

/** What one attention call sees besides the tokens. */
export interface AttentionInputs {
  /** Multiway split position (-1 vision, 0 text, `1 + numPatches` joint). */
  split: number;
  /** Additive logit bias `[B, 1, 1, T]` (0 or -inf for padded keys), or null. */
  keyBias: tf.Tensor | null;
  /** Additive `[T, T]` attention mask (torchscale's `attn_mask`), or null. */
  attnMask: tf.Tensor | null;
  training: boolean;
}

/**
 * torchscale's `MultiheadAttention` as BEiT-3 uses it (self-attention over all tokens of both modalities):
 * separate multiway `q_proj`, `k_proj`, `v_proj`, `out_proj` (with bias), q scaled by `head_dim^-0.5` before
 * `q k^T`, the additive mask, padded keys at `-inf`, softmax, then the optional sub-LN `inner_attn_ln` and
 * `out_proj`. State-dict keys `{q,k,v,out}_proj.{A,B}.*`, `inner_attn_ln.{A,B}.*`.
 */
export class MultiwayAttention extends Module {
  readonly qProj: Experts<Linear>;
  readonly kProj: Experts<Linear>;
  readonly vProj: Experts<Linear>;
  readonly outProj: Experts<Linear>;
  readonly innerAttnLn: Experts<LayerNorm> | null;
  readonly headDim: number;
  readonly scale: number;
  constructor(readonly opts: MultiwayAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, multiway } = opts;
    this.headDim = dim / opts.numHeads;
    this.scale = this.headDim ** -0.5;
    const lin = () => new Linear(dim, dim);
    this.kProj = this.addModule('k_proj', multiwayWrapper(multiway, lin));
    this.vProj = this.addModule('v_proj', multiwayWrapper(multiway, lin));
    this.qProj = this.addModule('q_proj', multiwayWrapper(multiway, lin));
    this.outProj = this.addModule('out_proj', multiwayWrapper(multiway, lin));
    this.innerAttnLn = opts.subln
      ? this.addModule(
          'inner_attn_ln',
          multiwayWrapper(multiway, () => new LayerNorm(dim, opts.eps)),
        )
      : null;
  }

  forward(x: tf.Tensor, inputs: AttentionInputs): tf.Tensor3D {
    const [b, t] = x.shape;
    const h = this.opts.numHeads;
    const { split } = inputs;
    const lin = (m: Linear, u: tf.Tensor) => m.forward(u);
    return tf.tidy(() => {
      const q = splitHeads(tf.mul(runExperts(this.qProj, x, split, lin), this.scale), b, t, h);
      const k = splitHeads(runExperts(this.kProj, x, split, lin), b, t, h);
      const v = splitHeads(runExperts(this.vProj, x, split, lin), b, t, h);
      let logits: tf.Tensor = tf.matMul(q, k, false, true); // [B*h, T, T]
      if (inputs.attnMask) logits = tf.add(logits, inputs.attnMask);
      if (inputs.keyBias) logits = tf.add(logits.reshape([b, h, t, t]), inputs.keyBias).reshape([b * h, t, t]);
      const attn = dropout(tf.softmax(logits), this.opts.attnDrop ?? 0, inputs.training);
      let o: tf.Tensor = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, h);
      if (this.innerAttnLn) o = runExperts(this.innerAttnLn, o, split, (m, u) => m.forward(u));
      return runExperts(this.outProj, o, split, lin) as tf.Tensor3D;
    });
  }
}
