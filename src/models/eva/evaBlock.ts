import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { GluMlp, SwiGLU } from '../../layers/swiGlu.js';
import { EvaAttention, EvaAttentionForwardOptions } from './evaAttention.js';

/** LayerNorm epsilon of every EVA norm (timm's `LayerNorm` default). */
export const EVA_NORM_EPS = 1e-6;

/** Options of {@link EvaBlock} (timm's `EvaBlock` / `EvaBlockPostNorm` arguments). */
export interface EvaBlockOptions {
  dim: number;
  numHeads: number;
  qkvBias: boolean;
  qkvFused: boolean;
  mlpRatio: number;
  swigluMlp: boolean;
  scaleMlp: boolean;
  scaleAttnInner: boolean;
  projDrop: number;
  attnDrop: number;
  dropPath: number;
  /** LayerScale init (pre-norm only); null = none. */
  initValues: number | null;
  /** Post-norm residuals (EVA-02-E) instead of pre-norm. */
  postNorm: boolean;
}

/**
 * EVA's MLP for a block (timm's choice in `EvaBlock`): SwiGLU with separate `fc1_g` / `fc1_x` and the
 * sub-LN `norm` when `scaleMlp`, the packed `GluMlp` (gate = first half of `fc1`) without it, else the GELU
 * `Mlp` (with `norm` when `scaleMlp`). Hidden width `int(dim * mlpRatio)`.
 */
export function evaMlp(o: Pick<EvaBlockOptions, 'dim' | 'mlpRatio' | 'swigluMlp' | 'scaleMlp' | 'projDrop'>): Mlp | SwiGLU | GluMlp {
  const hidden = Math.floor(o.dim * o.mlpRatio);
  const normEps = o.scaleMlp ? EVA_NORM_EPS : null;
  if (o.swigluMlp && o.scaleMlp) return new SwiGLU(o.dim, { hiddenFeatures: hidden, act: 'silu', normEps, drop: o.projDrop });
  if (o.swigluMlp) return new GluMlp(o.dim, { hiddenFeatures: 2 * hidden, act: 'silu', gateLast: false, drop: o.projDrop });
  return new Mlp(o.dim, { hiddenFeatures: hidden, act: 'gelu', normEps, drop: o.projDrop });
}

/**
 * One EVA transformer block on tokens `[B, N, C]`. Pre-norm (EVA-01/02, as ViT eq. 2-3):
 * `x + gamma_1 * attn(norm1(x))`, `x + gamma_2 * mlp(norm2(x))`; post-norm (`postNorm`, EVA-02-E):
 * `x + norm1(attn(x))`, `x + norm2(mlp(x))`. Stochastic depth on both branches. State-dict keys
 * `gamma_1`, `gamma_2` (layer scale), `norm1`, `attn.*`, `norm2`, `mlp.*` (timm's `EvaBlock`).
 */
export class EvaBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: EvaAttention;
  readonly gamma1: Parameter | null;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp | SwiGLU | GluMlp;
  readonly gamma2: Parameter | null;
  private readonly dropPath: DropPath;

  constructor(readonly opts: EvaBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const attn = new EvaAttention({
      dim,
      numHeads: opts.numHeads,
      qkvBias: opts.qkvBias,
      qkvFused: opts.qkvFused,
      normEps: opts.scaleAttnInner ? EVA_NORM_EPS : null,
      attnDrop: opts.attnDrop,
      projDrop: opts.projDrop,
    });
    // children in timm's registration order (post-norm: attn, norm1, mlp, norm2)
    if (opts.postNorm) {
      this.attn = this.addModule('attn', attn);
      this.norm1 = this.addModule('norm1', new LayerNorm(dim, EVA_NORM_EPS));
      this.mlp = this.addModule('mlp', evaMlp(opts));
      this.norm2 = this.addModule('norm2', new LayerNorm(dim, EVA_NORM_EPS));
    } else {
      this.norm1 = this.addModule('norm1', new LayerNorm(dim, EVA_NORM_EPS));
      this.attn = this.addModule('attn', attn);
      this.norm2 = this.addModule('norm2', new LayerNorm(dim, EVA_NORM_EPS));
      this.mlp = this.addModule('mlp', evaMlp(opts));
    }
    const ls = !opts.postNorm && opts.initValues !== null;
    this.gamma1 = ls ? this.addParameter('gamma_1', tf.fill([dim], opts.initValues!)) : null;
    this.gamma2 = ls ? this.addParameter('gamma_2', tf.fill([dim], opts.initValues!)) : null;
    this.dropPath = new DropPath(opts.dropPath);
  }

  /** `x`: tokens `[B, N, C]`; `opts.rope`: the rotary tables of the model (or none). */
  forward(x: tf.Tensor, opts: EvaAttentionForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      if (this.opts.postNorm) {
        const y = tf.add(x, this.dropPath.forward(this.norm1.forward(this.attn.forward(x, opts)), opts));
        return tf.add(y, this.dropPath.forward(this.norm2.forward(this.mlp.forward(y, opts)), opts)) as tf.Tensor3D;
      }
      let a: tf.Tensor = this.attn.forward(this.norm1.forward(x), opts);
      if (this.gamma1) a = tf.mul(a, this.gamma1.value);
      const y = tf.add(x, this.dropPath.forward(a, opts));
      let m = this.mlp.forward(this.norm2.forward(y), opts);
      if (this.gamma2) m = tf.mul(m, this.gamma2.value);
      return tf.add(y, this.dropPath.forward(m, opts)) as tf.Tensor3D;
    });
  }
}
