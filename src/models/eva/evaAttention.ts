import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { mergeHeads, splitHeads, splitQkv } from '../../layers/attention.js';
import { dropout } from '../../layers/dropPath.js';
import { denseProduct, Linear } from '../../layers/linear.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { applyRope, RopeTables } from '../../layers/rotaryEmbedding.js';

/** Options of {@link EvaAttention} (timm's `EvaAttention` arguments). */
export interface EvaAttentionOptions {
  dim: number;
  numHeads: number;
  /** Biases of q and v (k has none). */
  qkvBias: boolean;
  /** One `qkv` projection (true) or `q_proj` / `k_proj` / `v_proj`. */
  qkvFused: boolean;
  /** LayerNorm of the concatenated head outputs before `proj` (`scale_attn_inner`), with this epsilon. */
  normEps: number | null;
  attnDrop?: number;
  projDrop?: number;
}

/** Options of {@link EvaAttention.forward}. */
export interface EvaAttentionForwardOptions extends ForwardOptions {
  /** Rotary tables over all tokens (prefix rows unrotated), applied to q and k before the scale. */
  rope?: RopeTables | null;
}

/**
 * EVA's multi-head self-attention (Vaswani et al. 2017, sec. 3.2.2, with the 2-D RoPE of EVA-02 sec. 2.1):
 * `proj(norm(softmax(rope(q) / sqrt(d) rope(k)^T) v))` over tokens `[B, N, C]`. The fused form projects
 * `x W^T + [q_bias, 0, v_bias]`; the unfused one has `q_proj` / `v_proj` with biases and `k_proj` without.
 * State-dict keys `q_bias`, `v_bias`, `qkv.weight` (fused) or `q_proj.*`, `k_proj.weight`, `v_proj.*`,
 * then `norm.*`, `proj.*` (timm's `EvaAttention`; its zero `k_bias` is a derived buffer).
 */
export class EvaAttention extends Module {
  readonly qkv: Linear | null;
  readonly qBias: Parameter | null;
  readonly vBias: Parameter | null;
  readonly kBias: tf.Tensor | null;
  readonly qProj: Linear | null;
  readonly kProj: Linear | null;
  readonly vProj: Linear | null;
  readonly norm: LayerNorm | null;
  readonly proj: Linear;
  readonly headDim: number;
  readonly scale: number;

  constructor(readonly opts: EvaAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads } = opts;
    check(Number.isInteger(numHeads) && numHeads > 0 && dim % numHeads === 0, () => `numHeads ${numHeads} does not divide embedDim ${dim}`);
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    if (opts.qkvFused) {
      this.qkv = this.addModule('qkv', new Linear(dim, 3 * dim, { bias: false }));
      this.qBias = opts.qkvBias ? this.addParameter('q_bias', tf.zeros([dim])) : null;
      this.vBias = opts.qkvBias ? this.addParameter('v_bias', tf.zeros([dim])) : null;
      this.kBias = opts.qkvBias ? this.addBuffer('k_bias', tf.zeros([dim])) : null;
      this.qProj = this.kProj = this.vProj = null;
    } else {
      this.qkv = null;
      this.qBias = this.vBias = this.kBias = null;
      this.qProj = this.addModule('q_proj', new Linear(dim, dim, { bias: opts.qkvBias }));
      this.kProj = this.addModule('k_proj', new Linear(dim, dim, { bias: false }));
      this.vProj = this.addModule('v_proj', new Linear(dim, dim, { bias: opts.qkvBias }));
    }
    this.norm = opts.normEps !== null ? this.addModule('norm', new LayerNorm(dim, opts.normEps)) : null;
    this.proj = this.addModule('proj', new Linear(dim, dim));
  }

  /** `x`: tokens `[B, N, C]` -> `[B, N, C]`. */
  forward(x: tf.Tensor, opts: EvaAttentionForwardOptions = {}): tf.Tensor3D {
    const { dim, numHeads } = this.opts;
    check(x.rank === 3 && x.shape[2] === dim, () => `EvaAttention expects [B, N, ${dim}] tokens, got shape [${x.shape.join(', ')}]`);
    const [b, n] = x.shape;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const x2 = x.reshape([b * n, dim]) as tf.Tensor2D;
      let q: tf.Tensor3D;
      let k: tf.Tensor3D;
      let v: tf.Tensor3D;
      if (this.qkv) {
        const bias = this.qBias && this.vBias && this.kBias ? tf.concat([this.qBias.value, this.kBias, this.vBias.value]) : null;
        [q, k, v] = splitQkv(denseProduct(x2, this.qkv.weight.value as tf.Tensor2D, bias), b, n, numHeads);
      } else {
        q = splitHeads(this.qProj!.forward(x2), b, n, numHeads);
        k = splitHeads(this.kProj!.forward(x2), b, n, numHeads);
        v = splitHeads(this.vProj!.forward(x2), b, n, numHeads);
      }
      if (opts.rope) {
        q = applyRope(q, opts.rope) as tf.Tensor3D;
        k = applyRope(k, opts.rope) as tf.Tensor3D;
      }
      const logits = tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true);
      const attn = dropout(tf.softmax(logits), this.opts.attnDrop ?? 0, training);
      let o: tf.Tensor = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, numHeads);
      if (this.norm) o = this.norm.forward(o);
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training) as tf.Tensor3D;
    });
  }
}
