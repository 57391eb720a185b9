import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ForwardOptions } from './module.js';
import { QkvAttention } from './qkvAttention.js';

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
export class SelfAttention extends QkvAttention {
  constructor(readonly opts: SelfAttentionOptions) {
    super({ ...opts, qkvBias: opts.qkvBias ?? false, normEps: opts.normEps ?? 1e-6 });
    this.config = { ...opts };
  }

  /** `x`: `[B, N, C]` tokens -> `[B, N, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    check(
      x.rank === 3 && x.shape[2] === this.opts.dim,
      () => `SelfAttention expects [B, N, ${this.opts.dim}] tokens, got shape [${x.shape.join(', ')}]`,
    );
    const [b, n] = x.shape;
    return this.attend(x, b, n, opts.training ?? false);
  }
}
