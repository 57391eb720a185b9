import * as tf from '@tensorflow/tfjs';
import { Mlp } from './mlp.js';
import { ForwardOptions } from './module.js';
import { PreNormBlock } from './preNormBlock.js';
import { SelfAttention } from './selfAttention.js';

/** Options of {@link TransformerBlock} (timm's `vision_transformer.Block` arguments). */
export interface TransformerBlockOptions {
  dim: number;
  numHeads: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  qkNorm?: boolean;
  /** LayerNorm on the attention output before its projection. */
  scaleAttnNorm?: boolean;
  projBias?: boolean;
  projDrop?: number;
  attnDrop?: number;
  /** LayerScale init value; null/0 = no layer scale. */
  initValues?: number | null;
  dropPath?: number;
  /** LayerNorm epsilon (timm ViT: 1e-6). */
  normEps?: number;
}

/**
 * The pre-norm transformer encoder block of ViT (Dosovitskiy et al. 2021, sec. 3.1 eq. 2-3):
 * `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`, with optional LayerScale and stochastic depth.
 * Tokens `[B, N, C]`. State-dict keys `norm1`, `attn.*`, `ls1.gamma`, `norm2`, `mlp.fc1/fc2`, `ls2.gamma`.
 */
export class TransformerBlock extends PreNormBlock<SelfAttention, Mlp> {
  constructor(readonly opts: TransformerBlockOptions) {
    const { dim } = opts;
    const eps = opts.normEps ?? 1e-6;
    super({
      dim,
      normEps: eps,
      initValues: opts.initValues,
      dropPath: opts.dropPath,
      attn: new SelfAttention({
        dim,
        numHeads: opts.numHeads,
        qkvBias: opts.qkvBias ?? false,
        qkNorm: opts.qkNorm,
        scaleNorm: opts.scaleAttnNorm,
        projBias: opts.projBias,
        attnDrop: opts.attnDrop,
        projDrop: opts.projDrop,
        normEps: eps,
      }),
      mlp: new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), bias: opts.projBias ?? true, drop: opts.projDrop }),
    });
    this.config = { ...opts };
  }

  override forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    return super.forward(x, opts) as tf.Tensor3D;
  }
}
