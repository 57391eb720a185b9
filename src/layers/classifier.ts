import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ActivationName, getActivation } from './activations.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/** Global pooling types of {@link ClassifierHead}. */
export type PoolType = 'avg' | 'max' | 'avgmax' | 'token' | '';

/** Options of {@link classifierHead} / {@link ClassifierHead}. */
export interface ClassifierHeadOptions {
  inChans: number;
  numClasses: number;
  /** 'avg' (default), 'max', 'avgmax', 'token' (first token of a `[B, L, C]` sequence) or '' (no pooling). */
  poolType?: PoolType;
  dropRate?: number;
}

/** Global pooling of an NHWC map `[B, H, W, C]` or tokens `[B, L, C]` to `[B, C]`. */
export function globalPool(x: tf.Tensor, poolType: PoolType): tf.Tensor {
  return tf.tidy(() => {
    if (x.rank === 2 || poolType === '') return x.clone();
    const axes = x.rank === 4 ? [1, 2] : [1];
    switch (poolType) {
      case 'avg':
        return tf.mean(x, axes);
      case 'max':
        return tf.max(x, axes);
      case 'avgmax':
        return tf.mul(tf.add(tf.mean(x, axes), tf.max(x, axes)), 0.5);
      case 'token':
        check(x.rank === 3, () => `token pooling needs [B, L, C] tokens, got shape [${x.shape.join(', ')}]`);
        return x.slice([0, 0, 0], [-1, 1, -1]).reshape([x.shape[0], x.shape[2] as number]);
      default:
        throw new Error(`unknown pool type '${poolType as string}'`);
    }
  });
}

/**
 * Pool, dropout, linear classifier (timm's `ClassifierHead`). `numClasses = 0` leaves the pooled
 * features. Takes an NHWC map or `[B, L, C]` tokens. State-dict keys `fc.*`.
 */
export class ClassifierHead extends Module {
  fc: Linear | null;
  constructor(readonly opts: ClassifierHeadOptions) {
    super();
    this.config = { ...opts };
    this.fc = opts.numClasses > 0 ? this.addModule('fc', new Linear(opts.inChans, opts.numClasses)) : null;
  }
  /** `preLogits`: return the pooled features before the classifier. */
  forward(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    const c = x.shape[x.rank - 1];
    check(
      c === this.opts.inChans,
      () => `classifier head expected ${this.opts.inChans} channels, got ${c} (shape [${x.shape.join(', ')}])`,
    );
    return tf.tidy(() => {
      let y = globalPool(x, this.opts.poolType ?? 'avg');
      y = dropout(y, this.opts.dropRate ?? 0, opts.training ?? false);
      if (opts.preLogits || !this.fc) return y as tf.Tensor2D;
      return this.fc.forward(y) as tf.Tensor2D;
    });
  }
}

/** Build a {@link ClassifierHead}. */
export function classifierHead(opts: ClassifierHeadOptions): ClassifierHead {
  return new ClassifierHead(opts);
}

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
  /** How `attach` (src/tasks) feeds it: the backbone's `forwardFeatures`. */
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
    check(
      Number.isInteger(opts.inChans) && opts.inChans > 0,
      () => `normMlpClassifierHead: inChans must be a positive integer, got ${opts.inChans}`,
    );
    check(
      Number.isInteger(opts.numClasses) && opts.numClasses >= 0,
      () => `normMlpClassifierHead: numClasses must be a non-negative integer, got ${opts.numClasses}`,
    );
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
    check(
      c === this.opts.inChans,
      () => `normMlpClassifierHead expected ${this.opts.inChans} channels, got ${c} (shape [${x.shape.join(', ')}])`,
    );
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
