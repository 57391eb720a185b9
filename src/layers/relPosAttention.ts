import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { addDecomposedRelPos, getRelPos, relPosLookupTensor } from './decomposedRelPos.js';
import { ForwardOptions, Parameter } from './module.js';
import { QkvAttention } from './qkvAttention.js';

/** Options of {@link RelPosAttention} (timm `vision_transformer_sam.Attention` arguments). */
export interface RelPosAttentionOptions {
  dim: number;
  numHeads: number;
  qkvBias?: boolean;
  qkNorm?: boolean;
  /** Add decomposed relative position embeddings (ViTDet / SAM). */
  useRelPos?: boolean;
  /** Token grid `[h, w]` the tables are sized for (`2h - 1`, `2w - 1` rows): the window, or the whole grid. */
  inputSize?: [number, number];
  attnDrop?: number;
  projDrop?: number;
  /** Epsilon of the q/k norms (SAM: 1e-5). */
  normEps?: number;
}

/**
 * Multi-head self-attention over a 2-D token grid `[B, H, W, C]` with decomposed relative position
 * embeddings (ViTDet, Li et al. 2022, sec. 3 / MViTv2 eq. 3): `softmax(q k^T / sqrt(d) + rel(q)) v`. The
 * grid is one window (windowed blocks) or the whole map (global blocks); when it differs from
 * `inputSize`, the tables are linearly resized as `get_rel_pos` does. State-dict keys `qkv.*`, `q_norm.*`,
 * `k_norm.*`, `proj.*`, `rel_pos_h` `[2h - 1, head_dim]`, `rel_pos_w` `[2w - 1, head_dim]`.
 */
export class RelPosAttention extends QkvAttention {
  readonly relPosH: Parameter | null;
  readonly relPosW: Parameter | null;
  private readonly lookupH: tf.Tensor2D | null;
  private readonly lookupW: tf.Tensor2D | null;
  constructor(readonly opts: RelPosAttentionOptions) {
    super({ ...opts, qkvBias: opts.qkvBias ?? true, normEps: opts.normEps ?? 1e-5 });
    this.config = { ...opts };
    if (opts.useRelPos) {
      const size = opts.inputSize;
      check(
        size !== undefined && size[0] > 0 && size[1] > 0,
        () => 'RelPosAttention with useRelPos needs inputSize [h, w] (the window or the token grid)',
      );
      const [h, w] = size!;
      this.relPosH = this.addParameter('rel_pos_h', tf.zeros([2 * h - 1, this.headDim]));
      this.relPosW = this.addParameter('rel_pos_w', tf.zeros([2 * w - 1, this.headDim]));
      this.lookupH = this.addBuffer('rel_pos_lookup_h', relPosLookupTensor(h, h, 2 * h - 1));
      this.lookupW = this.addBuffer('rel_pos_lookup_w', relPosLookupTensor(w, w, 2 * w - 1));
    } else {
      this.relPosH = this.relPosW = null;
      this.lookupH = this.lookupW = null;
    }
  }

  /** `x`: `[B, H, W, C]` (B counts windows) -> `[B, H, W, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.opts.dim,
      () => `RelPosAttention expects [B, H, W, ${this.opts.dim}], got shape [${x.shape.join(', ')}]`,
    );
    const [b, h, w, c] = x.shape;
    const n = h * w;
    return tf.tidy(() => {
      const relPos = (logits: tf.Tensor3D, q: tf.Tensor3D) => {
        const [th, tw] = [this.relPosH!.variable.shape[0], this.relPosW!.variable.shape[0]];
        const sameH = 2 * h - 1 === th && this.lookupH!.shape[0] === h * h;
        const sameW = 2 * w - 1 === tw && this.lookupW!.shape[0] === w * w;
        const rh = getRelPos(h, h, this.relPosH!.value, sameH ? this.lookupH! : undefined);
        const rw = getRelPos(w, w, this.relPosW!.value, sameW ? this.lookupW! : undefined);
        return addDecomposedRelPos(logits, q, rh, rw, [h, w], [h, w]);
      };
      const o = this.attend(x.reshape([b * n, c]), b, n, opts.training ?? false, this.relPosH ? relPos : undefined);
      return o.reshape([b, h, w, c]) as tf.Tensor4D;
    });
  }
}
