import * as tf from '@tensorflow/tfjs';
import { MlpWithDepthwiseConv } from '../../layers/mlpWithDepthwiseConv.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PreNormBlock } from '../../layers/preNormBlock.js';
import { OverlapPatchEmbed } from '../../layers/overlapPatchEmbed.js';
import { SpatialReductionAttention } from '../../layers/spatialReductionAttention.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link PvtV2Block}. */
export interface PvtV2BlockOptions {
  dim: number;
  numHeads: number;
  mlpRatio?: number;
  srRatio?: number;
  /** Linear spatial-reduction attention and the MLP's extra ReLU (PVT v2-Li). */
  linear?: boolean;
  qkvBias?: boolean;
  projDrop?: number;
  attnDrop?: number;
  dropPath?: number;
  /** Epsilon of `norm1` / `norm2` (timm's PVT v2 norm layer: 1e-6). */
  normEps?: number;
}

/**
 * PVT v2 encoder block (Wang et al. 2022, sec. 3): `x + SRA(norm1(x))`, then
 * `x + ConvMLP(norm2(x))`, on NHWC maps. State-dict keys `norm1`, `attn.*`, `norm2`, `mlp.*`
 * (timm's `pvt_v2.Block`).
 */
export class PvtV2Block extends PreNormBlock<SpatialReductionAttention, MlpWithDepthwiseConv> {
  constructor(readonly opts: PvtV2BlockOptions) {
    const { dim } = opts;
    super({
      dim,
      normEps: opts.normEps ?? 1e-6,
      dropPath: opts.dropPath,
      attn: new SpatialReductionAttention({
        dim,
        numHeads: opts.numHeads,
        srRatio: opts.srRatio,
        linear: opts.linear,
        qkvBias: opts.qkvBias,
        attnDrop: opts.attnDrop,
        projDrop: opts.projDrop,
      }),
      mlp: new MlpWithDepthwiseConv(dim, {
        hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)),
        extraRelu: opts.linear,
        drop: opts.projDrop,
      }),
    });
    this.config = { ...opts };
  }

  /** `x`: NHWC `[B, H, W, C]`. */
  override forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return super.forward(x, opts) as tf.Tensor4D;
  }
}

/** Options of {@link PvtV2Stage}. */
export interface PvtV2StageOptions extends Omit<PvtV2BlockOptions, 'dim' | 'dropPath'> {
  dim: number;
  dimOut: number;
  depth: number;
  /** Start with an overlapping 3x3 stride-2 patch embedding (every stage but the first). */
  downsample: boolean;
  /** Drop-path rate of each block. */
  dropPath: number[];
}

/**
 * A PVT v2 stage: optional overlapping patch embedding (3x3, stride 2, LayerNorm eps 1e-5), `depth`
 * blocks and a final LayerNorm. NHWC in and out. Keys `downsample.*`, `blocks.<j>.*`, `norm.*`
 * (timm's `PyramidVisionTransformerStage`).
 */
export class PvtV2Stage extends Module {
  readonly downsample: OverlapPatchEmbed | null;
  readonly blocks: ModuleList<PvtV2Block>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  readonly norm: LayerNorm;
  constructor(readonly opts: PvtV2StageOptions) {
    super();
    this.config = { ...opts };
    const { dim, dimOut, depth, downsample, dropPath, ...blockOpts } = opts;
    this.downsample = downsample
      ? this.addModule('downsample', new OverlapPatchEmbed({ patchSize: 3, stride: 2, inChans: dim, embedDim: dimOut }))
      : null;
    this.blocks = this.addModule('blocks', new ModuleList<PvtV2Block>());
    for (let j = 0; j < depth; j++) this.blocks.push(new PvtV2Block({ ...blockOpts, dim: dimOut, dropPath: dropPath[j] ?? 0 }));
    this.norm = this.addModule('norm', new LayerNorm(dimOut, opts.normEps ?? 1e-6));
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y = (this.downsample ? this.downsample.forward(x) : x) as tf.Tensor4D;
      for (const b of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, b, y, (u) => b.forward(u, opts));
      return this.norm.forward(y) as tf.Tensor4D;
    });
  }
}
