import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ActivationName, getActivation } from '../layers/activations.js';
import { dropout } from '../layers/dropPath.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import { globalPool, PoolType } from './classifierHead.js';

/** Options of {@link normMlpClassifierHead} (timm's `NormMlpClassifierHead` arguments). */
export interface NormMlpClassifierHeadOptions {
  inChans: number;
  numClasses: number;
  /** Width of the optional pre-logits layer `pre_logits.fc` + activation (0 / absent: none). */
  hiddenSize?: number;
  /** 'avg' (default), 'max', 'avgmax' or 'token'. */
  poolType?: PoolType;
  dropRate?: number;
  /** LayerNorm epsilon (timm's `LayerNorm2d` default 1e-6). */
  normEps?: number;
  /** Activation of the pre-logits layer (timm's default tanh). */
  act?: ActivationName | 'tanh';
}

/**
 * timm's `NormMlpClassifierHead` (the ConvNeXt head, Liu et al. 2022 sec. 2): global pool, LayerNorm,
 * optional hidden Linear + activation, dropout, Linear classifier. Takes an NHWC map or `[B, L, C]`
 * tokens. State-dict keys `norm.*`, `pre_logits.fc.*`, `fc.*`.
 */
export class NormMlpClassifierHead extends Module {
  /** How {@link attach} feeds it: the backbone's `forwardFeatures`. */
  readonly inputKind = 'features' as const;
  readonly norm: LayerNorm;
  readonly preLogitsFc: Linear | null;
  readonly fc: Linear | null;
  /** Width of the pooled (pre-logits) features. */
  readonly numFeatures: number;
  private readonly act: (x: tf.Tensor) => tf.Tensor;

  constructor(readonly opts: NormMlpClassifierHeadOptions) {
    super();
    this.config = { ...opts };
    check(Number.isInteger(opts.inChans) && opts.inChans > 0, () => `normMlpClassifierHead: inChans must be a positive integer, got ${opts.inChans}`);
    check(Number.isInteger(opts.numClasses) && opts.numClasses >= 0, () => `normMlpClassifierHead: numClasses must be a non-negative integer, got ${opts.numClasses}`);
    this.norm = this.addModule('norm', new LayerNorm(opts.inChans, opts.normEps ?? 1e-6));
    const hidden = opts.hiddenSize ?? 0;
    if (hidden > 0) {
      const pre = this.addModule('pre_logits', new PreLogits());
      this.preLogitsFc = pre.add('fc', new Linear(opts.inChans, hidden));
    } else this.preLogitsFc = null;
    this.numFeatures = hidden > 0 ? hidden : opts.inChans;
    this.fc = opts.numClasses > 0 ? this.addModule('fc', new Linear(this.numFeatures, opts.numClasses)) : null;
    const act = opts.act ?? 'tanh';
    this.act = act === 'tanh' ? (x) => tf.tanh(x) : getActivation(act);
  }

  /** `x`: NHWC map or `[B, L, C]` tokens -> logits `[B, numClasses]` (pooled features with `preLogits`). */
  forward(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    const c = x.shape[x.rank - 1];
    check(c === this.opts.inChans, () => `normMlpClassifierHead expected ${this.opts.inChans} channels, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => {
      let y = this.norm.forward(globalPool(x, this.opts.poolType ?? 'avg'));
      if (this.preLogitsFc) y = this.act(this.preLogitsFc.forward(y));
      y = dropout(y, this.opts.dropRate ?? 0, opts.training ?? false);
      if (opts.preLogits || !this.fc) return y as tf.Tensor2D;
      return this.fc.forward(y) as tf.Tensor2D;
    });
  }
}

/** Container named `pre_logits` (timm's `nn.Sequential(OrderedDict(fc=..., act=...))`). */
class PreLogits extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.addModule(name, m);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return x.clone();
  }
}

/** Build a {@link NormMlpClassifierHead}. */
export function normMlpClassifierHead(opts: NormMlpClassifierHeadOptions): NormMlpClassifierHead {
  return new NormMlpClassifierHead(opts);
}
