import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitQkv } from './attention.js';
import { addDecomposedRelPos, getRelPos, relPosLookupTensor } from './decomposedRelPos.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module, Parameter } from './module.js';
import { LayerNorm } from './norm.js';

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
export class RelPosAttention extends Module {
  readonly qkv: Linear;
  readonly qNorm: LayerNorm | null;
  readonly kNorm: LayerNorm | null;
  readonly proj: Linear;
  readonly relPosH: Parameter | null;
  readonly relPosW: Parameter | null;
  readonly headDim: number;
  readonly scale: number;
  private readonly lookupH: tf.Tensor2D | null;
  private readonly lookupW: tf.Tensor2D | null;
  constructor(readonly opts: RelPosAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads } = opts;
    check(Number.isInteger(numHeads) && numHeads > 0, () => `numHeads must be a positive integer, got ${numHeads}`);
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.headDim = dim / numHeads;
    this.scale = this.headDim ** -0.5;
    const eps = opts.normEps ?? 1e-5;
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: opts.qkvBias ?? true }));
    this.qNorm = opts.qkNorm ? this.addModule('q_norm', new LayerNorm(this.headDim, eps)) : null;
    this.kNorm = opts.qkNorm ? this.addModule('k_norm', new LayerNorm(this.headDim, eps)) : null;
    this.proj = this.addModule('proj', new Linear(dim, dim));
    if (opts.useRelPos) {
      const size = opts.inputSize;
      check(size !== undefined && size[0] > 0 && size[1] > 0, () => 'RelPosAttention with useRelPos needs inputSize [h, w] (the window or the token grid)');
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
    check(x.rank === 4 && x.shape[3] === this.opts.dim, () => `RelPosAttention expects [B, H, W, ${this.opts.dim}], got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    const n = h * w;
    const heads = this.opts.numHeads;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let [q, k, v] = splitQkv(this.qkv.forward(x.reshape([b * n, c])), b, n, heads);
      if (this.qNorm) q = this.qNorm.forward(q) as tf.Tensor3D;
      if (this.kNorm) k = this.kNorm.forward(k) as tf.Tensor3D;
      let attn: tf.Tensor = tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true);
      if (this.relPosH && this.relPosW) {
        const [th, tw] = [this.relPosH.variable.shape[0], this.relPosW.variable.shape[0]];
        const sameH = 2 * h - 1 === th && this.lookupH!.shape[0] === h * h;
        const sameW = 2 * w - 1 === tw && this.lookupW!.shape[0] === w * w;
        const rh = getRelPos(h, h, this.relPosH.value, sameH ? this.lookupH! : undefined);
        const rw = getRelPos(w, w, this.relPosW.value, sameW ? this.lookupW! : undefined);
        attn = addDecomposedRelPos(attn, q, rh, rw, [h, w], [h, w]);
      }
      attn = dropout(tf.softmax(attn), this.opts.attnDrop ?? 0, training);
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, heads);
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training).reshape([b, h, w, c]) as tf.Tensor4D;
    });
  }
}
