import * as tf from '@tensorflow/tfjs';
import { DropPath } from './dropPath.js';
import { LayerScale } from './layerScale.js';
import { Mlp } from './mlp.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';
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
export class TransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: SelfAttention;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale | null;
  readonly dropPath: DropPath;
  constructor(readonly opts: TransformerBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const eps = opts.normEps ?? 1e-6;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    this.attn = this.addModule(
      'attn',
      new SelfAttention({
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
    );
    this.ls1 = opts.initValues ? this.addModule('ls1', new LayerScale(dim, opts.initValues)) : null;
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, eps));
    this.mlp = this.addModule(
      'mlp',
      new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), bias: opts.projBias ?? true, drop: opts.projDrop }),
    );
    this.ls2 = opts.initValues ? this.addModule('ls2', new LayerScale(dim, opts.initValues)) : null;
    this.dropPath = new DropPath(opts.dropPath ?? 0);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      let a: tf.Tensor = this.attn.forward(this.norm1.forward(x), opts);
      if (this.ls1) a = this.ls1.forward(a);
      const y = tf.add(x, this.dropPath.forward(a, opts));
      let m = this.mlp.forward(this.norm2.forward(y), opts);
      if (this.ls2) m = this.ls2.forward(m);
      return tf.add(y, this.dropPath.forward(m, opts)) as tf.Tensor3D;
    });
  }
}
