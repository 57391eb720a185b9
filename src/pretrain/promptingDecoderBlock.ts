import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitHeads } from '../layers/attention.js';
import { dropout, DropPath } from '../layers/dropPath.js';
import { Linear } from '../layers/linear.js';
import { Mlp } from '../layers/mlp.js';
import { ForwardOptions, Module } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';

/** Options of {@link PromptingDecoderBlock}. */
export interface PromptingDecoderBlockOptions {
  dim: number;
  numHeads: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  dropPath?: number;
  attnDrop?: number;
  projDrop?: number;
  /** LayerNorm epsilon (1e-5: `nn.LayerNorm`, as the reference). */
  normEps?: number;
}

/**
 * Cross attention of MILAN's prompting decoder (official `Attention_fordecoder`): queries from the
 * (normalised) mask tokens only, keys and values from the fixed encoded tokens (class token + visible
 * tokens, not normalised) together with the normalised mask tokens. Keys `q.*`, `kv.*`, `proj.*`.
 */
export class PromptingAttention extends Module {
  readonly q: Linear;
  readonly kv: Linear;
  readonly proj: Linear;
  readonly scale: number;
  constructor(
    readonly dim: number,
    readonly numHeads: number,
    qkvBias: boolean,
    readonly attnDrop = 0,
    readonly projDrop = 0,
  ) {
    super();
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.scale = (dim / numHeads) ** -0.5;
    this.q = this.addModule('q', new Linear(dim, dim, { bias: qkvBias }));
    this.kv = this.addModule('kv', new Linear(dim, 2 * dim, { bias: qkvBias }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
  }

  /** `x`: normalised mask tokens `[B, M, D]`; `fixed`: `[B, F, D]` -> `[B, M, D]`. */
  forward(x: tf.Tensor, opts: ForwardOptions & { fixed?: tf.Tensor } = {}): tf.Tensor3D {
    check(opts.fixed !== undefined, 'PromptingAttention needs the fixed encoded tokens (opts.fixed)');
    const [b, m, d] = x.shape as number[];
    const h = this.numHeads;
    const hd = d / h;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      // keys/values over [fixed; mask tokens]: attention is invariant to the key order, so the reference's unshuffle is not needed
      const kvIn = tf.concat([opts.fixed!, x], 1);
      const n = kvIn.shape[1] as number;
      const q = splitHeads(this.q.forward(x), b, m, h);
      const kv = this.kv
        .forward(kvIn)
        .reshape([b, n, 2 * h, hd])
        .transpose([0, 2, 1, 3]); // [B, 2h, N, hd]
      const [k, v] = tf.split(kv, 2, 1).map((t) => t.reshape([b * h, n, hd]) as tf.Tensor3D);
      const attn = dropout(tf.softmax(tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true)), this.attnDrop, training);
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, h);
      return dropout(this.proj.forward(o), this.projDrop, training) as tf.Tensor3D;
    });
  }
}

/**
 * MILAN's prompting decoder block (Hou et al. 2022, sec. 3.3; official `Block_fordecoder`): only the
 * mask tokens are updated, `x + attn(norm1(x), fixed)` then `x + mlp(norm2(x))`, while the encoded
 * visible tokens stay fixed and act as prompts. Keys `norm1`, `attn.{q,kv,proj}`, `norm2`, `mlp.fc1/fc2`.
 */
export class PromptingDecoderBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: PromptingAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  constructor(readonly opts: PromptingDecoderBlockOptions) {
    super();
    this.config = { ...opts };
    const eps = opts.normEps ?? 1e-5;
    this.norm1 = this.addModule('norm1', new LayerNorm(opts.dim, eps));
    this.attn = this.addModule('attn', new PromptingAttention(opts.dim, opts.numHeads, opts.qkvBias ?? true, opts.attnDrop, opts.projDrop));
    this.norm2 = this.addModule('norm2', new LayerNorm(opts.dim, eps));
    this.mlp = this.addModule(
      'mlp',
      new Mlp(opts.dim, { hiddenFeatures: Math.floor(opts.dim * (opts.mlpRatio ?? 4)), drop: opts.projDrop }),
    );
    this.dropPath = new DropPath(opts.dropPath ?? 0);
  }

  /** `x`: mask tokens `[B, M, D]`; `fixed`: class + visible tokens `[B, F, D]`. */
  forward(x: tf.Tensor, opts: ForwardOptions & { fixed?: tf.Tensor } = {}): tf.Tensor3D {
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const y = tf.add(x, this.dropPath.forward(this.attn.forward(this.norm1.forward(x), opts), { training }));
      return tf.add(y, this.dropPath.forward(this.mlp.forward(this.norm2.forward(y), opts), { training })) as tf.Tensor3D;
    });
  }
}
