import * as tf from '@tensorflow/tfjs';
import { gelu } from './activations.js';
import { LayerScale } from './layerScale.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { MultiheadAttention } from './multiheadAttention.js';
import { LayerNorm } from './norm.js';

/** The activations of OpenAI / open_clip transformers. */
export type ClipActivation = 'gelu' | 'quick_gelu';

/** OpenAI CLIP's QuickGELU, `x * sigmoid(1.702 x)` (Radford et al. 2021; Hendrycks & Gimpel 2016, sec. 2). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702))));
}

/** The MLP of a CLIP block, `c_proj(act(c_fc(x)))` (keys `c_fc.*`, `c_proj.*`). */
export class ClipMlp extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly dim: number,
    readonly hidden: number,
    readonly actLayer: ClipActivation = 'gelu',
  ) {
    super();
    this.config = { dim, hidden, actLayer };
    this.cFc = this.addModule('c_fc', new Linear(dim, hidden));
    this.cProj = this.addModule('c_proj', new Linear(hidden, dim));
    this.act = actLayer === 'quick_gelu' ? quickGelu : gelu;
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.cProj.forward(this.act(this.cFc.forward(x))));
  }
}

/** Options of {@link ResidualAttentionBlock} (open_clip's arguments). */
export interface ResidualAttentionBlockOptions {
  dim: number;
  heads: number;
  /** Default 4. */
  mlpRatio?: number;
  /** LayerScale init value; null = none (keys `ls_1.gamma`, `ls_2.gamma` when set). */
  lsInitValue?: number | null;
  /** Default 'gelu'. */
  actLayer?: ClipActivation;
  /** Cross-attention block: adds `ln_1_kv` for the keys/values. */
  isCrossAttention?: boolean;
  /** LayerNorm epsilon (open_clip: 1e-5). */
  normEps?: number;
}

/** Inputs of {@link ResidualAttentionBlock.forward} besides the tokens. */
export interface ResidualAttentionInputs extends ForwardOptions {
  /** Keys/values of a cross-attention block `[B, S, dim]` (normalised by `ln_1_kv`). */
  kv?: tf.Tensor;
  /** Additive attention mask, `[L, S]` or `[B, L, S]`. */
  attnMask?: tf.Tensor;
}

/**
 * The pre-norm transformer block of OpenAI CLIP / open_clip (Radford et al. 2021, sec. 2.4):
 * `x + ls_1(attn(ln_1(x)))`, `x + ls_2(mlp(ln_2(x)))`; as a cross-attention block the keys and values are
 * `ln_1_kv(kv)`. Keys `ln_1`, `attn.in_proj_weight`, `attn.in_proj_bias`, `attn.out_proj`, `ln_1_kv`, `ln_2`,
 * `mlp.c_fc`, `mlp.c_proj`, `ls_1.gamma`, `ls_2.gamma`: the same as OpenAI's and open_clip's checkpoints.
 */
export class ResidualAttentionBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly ls1: LayerScale | null;
  readonly ln1Kv: LayerNorm | null;
  readonly ln2: LayerNorm;
  readonly mlp: ClipMlp;
  readonly ls2: LayerScale | null;
  constructor(readonly opts: ResidualAttentionBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const eps = opts.normEps ?? 1e-5;
    const ls = opts.lsInitValue ?? null;
    this.ln1 = this.addModule('ln_1', new LayerNorm(dim, eps));
    this.attn = this.addModule('attn', new MultiheadAttention(dim, opts.heads));
    this.ls1 = ls !== null ? this.addModule('ls_1', new LayerScale(dim, ls)) : null;
    this.ln1Kv = opts.isCrossAttention ? this.addModule('ln_1_kv', new LayerNorm(dim, eps)) : null;
    this.ln2 = this.addModule('ln_2', new LayerNorm(dim, eps));
    this.mlp = this.addModule('mlp', new ClipMlp(dim, Math.floor(dim * (opts.mlpRatio ?? 4)), opts.actLayer ?? 'gelu'));
    this.ls2 = ls !== null ? this.addModule('ls_2', new LayerScale(dim, ls)) : null;
  }

  /** `x` `[B, L, dim]` -> `[B, L, dim]`. */
  forward(x: tf.Tensor, opts: ResidualAttentionInputs = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const kv = this.ln1Kv && opts.kv ? this.ln1Kv.forward(opts.kv) : undefined;
      let a: tf.Tensor = this.attn.forward(this.ln1.forward(x), { key: kv, value: kv, attnMask: opts.attnMask, training: opts.training });
      if (this.ls1) a = this.ls1.forward(a);
      const y = tf.add(x, a);
      let m = this.mlp.forward(this.ln2.forward(y));
      if (this.ls2) m = this.ls2.forward(m);
      return tf.add(y, m) as tf.Tensor3D;
    });
  }
}
