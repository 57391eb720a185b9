import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { dropout } from '../layers/dropPath.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module } from '../layers/module.js';

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
    check(c === this.opts.inChans, () => `classifier head expected ${this.opts.inChans} channels, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => {
      let y = globalPool(x, this.opts.poolType ?? 'avg');
      y = dropout(y, this.opts.dropRate ?? 0, opts.training ?? false);
      if (opts.preLogits || !this.fc) return y as tf.Tensor2D;
      return this.fc.forward(y) as tf.Tensor2D;
    });
  }
}

/** Build a {@link ClassifierHead} (the contract's `classifierHead`). */
export function classifierHead(opts: ClassifierHeadOptions): ClassifierHead {
  return new ClassifierHead(opts);
}
