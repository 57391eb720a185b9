import * as tf from '@tensorflow/tfjs';
import { DropPath } from './dropPath.js';
import { LayerScale } from './layerScale.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/** A token mixer or MLP of a {@link PreNormBlock}: any module with `forward(x, opts)`. */
export interface BlockBranch extends Module {
  forward(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor;
}

/** The parts of a {@link PreNormBlock}: the injected attention and MLP, norms, LayerScale, stochastic depth. */
export interface PreNormBlockParts<A extends BlockBranch, M extends BlockBranch> {
  dim: number;
  /** The token mixer (`attn.*` keys). */
  attn: A;
  /** The MLP (`mlp.*` keys). */
  mlp: M;
  /** Epsilon of `norm1` / `norm2`. */
  normEps: number;
  /** LayerScale init value (`ls1.gamma`, `ls2.gamma`); null/0 = none. */
  initValues?: number | null;
  /** Stochastic-depth rate of both branches. */
  dropPath?: number;
  /** Pass only `{ training }` to the branches, not the caller's other options (default false). */
  trainingOnly?: boolean;
}

/**
 * timm's pre-norm residual `Block` with the attention and the MLP injected:
 * `y = x + dropPath(ls1(mixer(norm1(x))))`, then `y + dropPath(ls2(mlp(norm2(y))))`. Children register
 * as `norm1`, `attn`, `ls1`, `norm2`, `mlp`, `ls2`, the reference's state-dict keys. A block whose
 * attention runs on another layout (ViTDet's windows) overrides {@link PreNormBlock.mix}.
 */
export class PreNormBlock<A extends BlockBranch, M extends BlockBranch> extends Module {
  readonly norm1: LayerNorm;
  readonly attn: A;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: M;
  readonly ls2: LayerScale | null;
  readonly dropPath: DropPath;
  private readonly trainingOnly: boolean;
  constructor(parts: PreNormBlockParts<A, M>) {
    super();
    const { dim, normEps } = parts;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, normEps));
    this.attn = this.addModule('attn', parts.attn);
    this.ls1 = parts.initValues ? this.addModule('ls1', new LayerScale(dim, parts.initValues)) : null;
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, normEps));
    this.mlp = this.addModule('mlp', parts.mlp);
    this.ls2 = parts.initValues ? this.addModule('ls2', new LayerScale(dim, parts.initValues)) : null;
    this.dropPath = new DropPath(parts.dropPath ?? 0);
    this.trainingOnly = parts.trainingOnly ?? false;
  }

  /** The attention branch on the normed input: `dropPath(ls1(attn(xn)))`. */
  protected attnBranch(xn: tf.Tensor, opts: ForwardOptions): tf.Tensor {
    let a = this.attn.forward(xn, opts);
    if (this.ls1) a = this.ls1.forward(a);
    return this.dropPath.forward(a, opts);
  }

  /** Apply {@link PreNormBlock.attnBranch} to the normed input (override to run it on another layout). */
  protected mix(xn: tf.Tensor, opts: ForwardOptions): tf.Tensor {
    return this.attnBranch(xn, opts);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const o = this.trainingOnly ? { training: opts.training ?? false } : opts;
    return tf.tidy(() => {
      const y = tf.add(x, this.mix(this.norm1.forward(x), o));
      let m = this.mlp.forward(this.norm2.forward(y), o);
      if (this.ls2) m = this.ls2.forward(m);
      return tf.add(y, this.dropPath.forward(m, o));
    });
  }
}
