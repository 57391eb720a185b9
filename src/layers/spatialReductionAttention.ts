import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { gelu } from './activations.js';
import { adaptiveAvgPool2d } from './adaptivePool.js';
import { mergeHeads, splitHeads } from './attention.js';
import { batchedMatMul } from './batchedMatMul.js';
import { Conv2d } from './conv2d.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Options of {@link SpatialReductionAttention}. */
export interface SpatialReductionAttentionOptions {
  dim: number;
  numHeads: number;
  /** Keys/values come from a `srRatio x srRatio`, stride-`srRatio` conv of the map (1 = no reduction). Ignored when `linear`. */
  srRatio?: number;
  /** Linear SRA: keys/values from the map average-pooled to `poolSize x poolSize` (PVT v2-Li). */
  linear?: boolean;
  /** Output size of the linear variant's adaptive pooling (7 in PVT v2). */
  poolSize?: number;
  qkvBias?: boolean;
  attnDrop?: number;
  projDrop?: number;
  /** Epsilon of the reduction's LayerNorm (timm uses `nn.LayerNorm`'s 1e-5 here). */
  normEps?: number;
  /** Attention scale instead of `headDim ** -0.5` (the reference's `qk_scale`; null or 0 = default). */
  qkScale?: number | null;
  /** Accept grids that `srRatio` does not divide: the strided reduction conv floors, as PyTorch's (PVT v1). */
  floorReduction?: boolean;
}

/**
 * Spatial-reduction attention (PVT, Wang et al. 2021, sec. 3.3 eq. 3-5; PVT v2, Wang et al. 2022,
 * sec. 3.3): multi-head attention whose keys and values are computed from a spatially reduced map,
 * `SR(x) = LayerNorm(Conv_{R x R, stride R}(x))`, so attention costs `N * N / R^2`. The linear
 * variant reduces to a fixed `7 x 7` grid: `GELU(LayerNorm(Conv1x1(AdaptiveAvgPool_7(x))))`.
 * Queries keep full resolution. Input and output are NHWC maps `[B, H, W, C]`.
 * State-dict keys `q.*`, `kv.*` (k then v along the output axis), `proj.*`, and `sr.*`, `norm.*`
 * when the map is reduced (timm's `pvt_v2.Attention`).
 */
export class SpatialReductionAttention extends Module {
  readonly q: Linear;
  readonly kv: Linear;
  readonly proj: Linear;
  readonly sr: Conv2d | null;
  readonly norm: LayerNorm | null;
  readonly headDim: number;
  readonly scale: number;
  readonly srRatio: number;
  constructor(readonly opts: SpatialReductionAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads } = opts;
    check(
      Number.isInteger(numHeads) && numHeads > 0 && dim % numHeads === 0,
      () => `numHeads ${numHeads} does not divide the width ${dim}`,
    );
    this.srRatio = opts.srRatio ?? 1;
    check(Number.isInteger(this.srRatio) && this.srRatio >= 1, () => `srRatio must be a positive integer, got ${this.srRatio}`);
    this.headDim = dim / numHeads;
    this.scale = opts.qkScale || this.headDim ** -0.5;
    const bias = opts.qkvBias ?? true;
    this.q = this.addModule('q', new Linear(dim, dim, { bias }));
    this.kv = this.addModule('kv', new Linear(dim, 2 * dim, { bias }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
    const reduce = opts.linear || this.srRatio > 1;
    const k = opts.linear ? 1 : this.srRatio;
    this.sr = reduce ? this.addModule('sr', new Conv2d(dim, dim, k, { stride: k })) : null;
    this.norm = reduce ? this.addModule('norm', new LayerNorm(dim, opts.normEps ?? 1e-5)) : null;
  }

  /** The keys/values source: the reduced map as `[B, M, C]` tokens. */
  private reduced(x: tf.Tensor4D): tf.Tensor3D {
    const [b, , , c] = x.shape;
    return tf.tidy(() => {
      let r: tf.Tensor = x;
      if (this.opts.linear) r = this.sr!.forward(adaptiveAvgPool2d(x, this.opts.poolSize ?? 7));
      else if (this.sr) r = this.sr.forward(x);
      if (this.norm) r = this.norm.forward(r);
      if (this.opts.linear) r = gelu(r);
      return r.reshape([b, -1, c]) as tf.Tensor3D;
    });
  }

  /** `x`: NHWC `[B, H, W, C]`; returns `[B, H, W, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    check(x.rank === 4, () => `SpatialReductionAttention expects an NHWC map [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    const { dim, numHeads: heads } = this.opts;
    check(c === dim, () => `SpatialReductionAttention expected ${dim} channels, got ${c}`);
    const r = this.srRatio;
    check(
      this.opts.linear || r === 1 || this.opts.floorReduction || (h % r === 0 && w % r === 0),
      () => `srRatio ${r} does not divide the ${h}x${w} token grid of this stage: the grid must be a multiple of srRatio`,
    );
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const n = h * w;
      const q = splitHeads(this.q.forward(x.reshape([b * n, c])), b, n, heads);
      const src = this.reduced(x as tf.Tensor4D);
      const m = src.shape[1];
      // kv.reshape(B, M, 2, heads, hd): k = first C outputs, v = the next C
      const kv = this.kv
        .forward(src.reshape([b * m, c]))
        .reshape([b, m, 2 * heads, this.headDim])
        .transpose([0, 2, 1, 3]);
      const [k, v] = tf.split(kv, 2, 1).map((t) => t.reshape([b * heads, m, this.headDim]) as tf.Tensor3D);
      let attn: tf.Tensor = batchedMatMul(tf.mul(q, this.scale) as tf.Tensor3D, k, true);
      attn = dropout(tf.softmax(attn), this.opts.attnDrop ?? 0, training);
      const o = mergeHeads(batchedMatMul(attn as tf.Tensor3D, v), b, heads);
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training).reshape([b, h, w, c]) as tf.Tensor4D;
    });
  }
}
