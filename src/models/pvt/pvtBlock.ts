import * as tf from '@tensorflow/tfjs';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions } from '../../layers/module.js';
import { PreNormBlock } from '../../layers/preNormBlock.js';
import { SpatialReductionAttention } from '../../layers/spatialReductionAttention.js';

/** Options of {@link PvtBlock}. */
export interface PvtBlockOptions {
  dim: number;
  numHeads: number;
  mlpRatio: number;
  srRatio: number;
  qkvBias: boolean;
  qkScale: number | null;
  drop: number;
  attnDrop: number;
  dropPath: number;
  /** Epsilon of `norm1` / `norm2` (the reference's `norm_layer`). */
  normEps: number;
}

/**
 * PVT v1 encoder block (Wang et al. 2021, sec. 3.3): `x + SRA(norm1(x))`, then `x + MLP(norm2(x))`,
 * with a GELU MLP of `int(dim * mlpRatio)` hidden units. On an NHWC map `[B, H, W, C]`; the last stage,
 * whose sequence starts with the class token, passes it as a `[B, 1, 1 + H*W, C]` row (its `srRatio`
 * is 1, so the row is never reduced). State-dict keys `norm1`, `attn.{q, kv, proj, sr, norm}`, `norm2`,
 * `mlp.{fc1, fc2}` (the official `Block`).
 */
export class PvtBlock extends PreNormBlock<SpatialReductionAttention, Mlp> {
  constructor(readonly opts: PvtBlockOptions) {
    const { dim } = opts;
    super({
      dim,
      normEps: opts.normEps,
      dropPath: opts.dropPath,
      trainingOnly: true,
      attn: new SpatialReductionAttention({
        dim,
        numHeads: opts.numHeads,
        srRatio: opts.srRatio,
        qkvBias: opts.qkvBias,
        qkScale: opts.qkScale,
        attnDrop: opts.attnDrop,
        projDrop: opts.drop,
        normEps: 1e-5,
        floorReduction: true,
      }),
      mlp: new Mlp(dim, { hiddenFeatures: Math.floor(dim * opts.mlpRatio), drop: opts.drop }),
    });
    this.config = { ...opts };
  }

  /** `x`: NHWC `[B, H, W, C]`. */
  override forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return super.forward(x, opts) as tf.Tensor4D;
  }
}
