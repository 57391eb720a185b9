import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
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
export class PvtBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: SpatialReductionAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  constructor(readonly opts: PvtBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, opts.normEps));
    this.attn = this.addModule(
      'attn',
      new SpatialReductionAttention({
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
    );
    this.dropPath = new DropPath(opts.dropPath);
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, opts.normEps));
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * opts.mlpRatio), drop: opts.drop }));
  }

  /** `x`: NHWC `[B, H, W, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    const t = { training: opts.training ?? false };
    return tf.tidy(() => {
      const y = tf.add(x, this.dropPath.forward(this.attn.forward(this.norm1.forward(x), t), t));
      return tf.add(y, this.dropPath.forward(this.mlp.forward(this.norm2.forward(y), t), t)) as tf.Tensor4D;
    });
  }
}
