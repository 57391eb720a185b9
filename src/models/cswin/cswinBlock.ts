import * as tf from '@tensorflow/tfjs';
import { CrossShapedAttention } from '../../layers/crossShapedAttention.js';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link CSWinBlock}. */
export interface CSWinBlockOptions {
  dim: number;
  numHeads: number;
  /** `[H, W]` of the stage's token map. */
  resolution: [number, number];
  splitSize: number;
  /** Full attention with all heads (the official `last_stage`). */
  lastStage?: boolean;
  mlpRatio?: number;
  qkvBias?: boolean;
  qkScale?: number | null;
  drop?: number;
  attnDrop?: number;
  dropPath?: number;
  normEps?: number;
}

/**
 * A CSWin transformer block (Dong et al. 2022, sec. 3.4 eq. 6): `x + DropPath(CSWin-Attention(LN(x)))`,
 * then `x + DropPath(MLP(LN(x)))`, on NHWC maps. State-dict keys as the official `CSWinBlock`: `qkv.*`,
 * `norm1.*`, `proj.*`, `attns.<i>.get_v.*`, `mlp.fc1/fc2.*`, `norm2.*` (the attention's own children
 * are registered at the block level, where the official code keeps them).
 */
export class CSWinBlock extends Module {
  readonly attn: CrossShapedAttention;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  constructor(readonly opts: CSWinBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const eps = opts.normEps ?? 1e-5;
    this.attn = new CrossShapedAttention({
      dim,
      numHeads: opts.numHeads,
      resolution: opts.resolution,
      splitSize: opts.splitSize,
      fullAttention: opts.lastStage,
      qkvBias: opts.qkvBias,
      qkScale: opts.qkScale,
      attnDrop: opts.attnDrop,
    });
    // adopt the attention's children under the official names (the block owns and disposes them)
    this.addModule('qkv', this.attn.qkv);
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    this.addModule('proj', this.attn.proj);
    this.addModule('attns', this.attn.attns);
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), drop: opts.drop }));
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, eps));
    this.dropPath = new DropPath(opts.dropPath ?? 0);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      const y = tf.add(x, this.dropPath.forward(this.attn.forward(this.norm1.forward(x), opts), opts));
      return tf.add(y, this.dropPath.forward(this.mlp.forward(this.norm2.forward(y), opts), opts)) as tf.Tensor4D;
    });
  }
}

/** Options of {@link CSWinStage}: the block options shared by a stage, its depth and drop-path rates. */
export interface CSWinStageOptions extends Omit<CSWinBlockOptions, 'dropPath'> {
  depth: number;
  dropPath: number[];
}

/** The blocks of one CSWin stage (the official `stage<i>` `nn.ModuleList`: keys `<j>.*`). NHWC. */
export class CSWinStage extends ModuleList<CSWinBlock> {
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  constructor(readonly opts: CSWinStageOptions) {
    super();
    this.config = { ...opts };
    const { depth, dropPath, ...block } = opts;
    for (let j = 0; j < depth; j++) this.push(new CSWinBlock({ ...block, dropPath: dropPath[j] ?? 0 }));
  }
  override forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y = x;
      for (const b of this.items) y = maybeCheckpoint(this.gradCheckpointing, opts, b, y, (u) => b.forward(u, opts));
      return (y === x ? x.clone() : y) as tf.Tensor4D;
    });
  }
}
