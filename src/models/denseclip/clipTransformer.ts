import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { MultiheadAttention } from '../../layers/multiheadAttention.js';
import { LayerNorm } from '../../layers/norm.js';
import { ClipMlp } from '../../layers/residualAttentionBlock.js';

/** Forward options of the CLIP blocks: an additive `[N, N]` attention mask. */
export interface ClipBlockOptions extends ForwardOptions {
  mask?: tf.Tensor | null;
}

/**
 * DenseCLIP's `ResidualAttentionBlock`: OpenAI CLIP's pre-norm block with QuickGELU plus stochastic depth,
 * `x + drop_path(attn(ln_1(x)))`, `x + drop_path(mlp(ln_2(x)))`. Keys `attn.in_proj_weight`,
 * `attn.in_proj_bias`, `attn.out_proj`, `ln_1`, `mlp.c_fc`, `mlp.c_proj`, `ln_2`.
 */
export class DenseClipBlock extends Module {
  readonly attn: MultiheadAttention;
  readonly ln1: LayerNorm;
  readonly mlp: ClipMlp;
  readonly ln2: LayerNorm;
  readonly dropPath: DropPath;
  constructor(dim: number, heads: number, dropPath = 0) {
    super();
    this.config = { dim, heads, dropPath };
    this.attn = this.addModule('attn', new MultiheadAttention(dim, heads));
    this.ln1 = this.addModule('ln_1', new LayerNorm(dim, 1e-5));
    this.mlp = this.addModule('mlp', new ClipMlp(dim, dim * 4, 'quick_gelu'));
    this.ln2 = this.addModule('ln_2', new LayerNorm(dim, 1e-5));
    this.dropPath = new DropPath(dropPath);
  }
  /** `x` `[B, N, C]` -> `[B, N, C]`. */
  forward(x: tf.Tensor, opts: ClipBlockOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const a = this.attn.forward(this.ln1.forward(x), { attnMask: opts.mask ?? undefined, training: opts.training });
      const y = tf.add(x, this.dropPath.forward(a, opts));
      return tf.add(y, this.dropPath.forward(this.mlp.forward(this.ln2.forward(y)), opts)) as tf.Tensor3D;
    });
  }
}

/**
 * CLIP's `Transformer` as DenseCLIP builds it: `resblocks.<i>` with drop-path rates
 * `linspace(0, dropPathRate, layers)`. Tokens batch-first `[B, N, C]` (CLIP runs `(N, B, C)`; same math).
 */
export class DenseClipTransformer extends Module {
  readonly resblocks: ModuleList<DenseClipBlock>;
  constructor(
    readonly width: number,
    readonly layers: number,
    readonly heads: number,
    dropPathRate = 0,
  ) {
    super();
    this.config = { width, layers, heads, dropPathRate };
    this.resblocks = this.addModule('resblocks', new ModuleList<DenseClipBlock>());
    for (let i = 0; i < layers; i++)
      this.resblocks.push(new DenseClipBlock(width, heads, layers > 1 ? (dropPathRate * i) / (layers - 1) : 0));
  }
  forward(x: tf.Tensor, opts: ClipBlockOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      let y = x as tf.Tensor3D;
      for (const blk of this.resblocks.items) y = blk.forward(y, opts);
      return y;
    });
  }
}

/** CLIP's causal text mask `[n, n]`: `-inf` strictly above the diagonal, 0 elsewhere. */
export function clipCausalMask(n: number): tf.Tensor2D {
  const v = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) v[i * n + j] = -Infinity;
  return tf.tensor2d(v, [n, n]);
}
