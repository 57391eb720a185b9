import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ForwardOptions, Module, Parameter } from './module.js';

/** Options of {@link BatchNorm2d} (PyTorch's `nn.BatchNorm2d` arguments). */
export interface BatchNorm2dOptions {
  /** Default 1e-5. */
  eps?: number;
  /** Running-statistics momentum (default 0.1): `running = (1 - m) running + m batch`. */
  momentum?: number;
  /** Learnable `weight` / `bias` (default true). */
  affine?: boolean;
}

/**
 * Batch normalisation over the channel axis of NHWC maps (Ioffe & Szegedy 2015, Alg. 1; PyTorch's
 * `nn.BatchNorm2d`). Training: normalise with the biased batch variance and update the running mean
 * and the unbiased running variance with `momentum`; eval: `x * s + (b - mean * s)` with
 * `s = w / sqrt(running_var + eps)`. State-dict keys `weight`, `bias`, `running_mean`, `running_var`,
 * `num_batches_tracked` (persistent buffers: saved, never trainable; the counter is int64 as in PyTorch).
 */
export class BatchNorm2d extends Module {
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly numBatchesTracked: tf.Variable;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    opts: BatchNorm2dOptions = {},
  ) {
    super();
    this.config = { numFeatures, ...opts };
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const affine = opts.affine ?? true;
    this.weight = affine ? this.addParameter('weight', tf.ones([numFeatures])) : null;
    this.bias = affine ? this.addParameter('bias', tf.zeros([numFeatures])) : null;
    this.runningMean = this.addBuffer('running_mean', tf.zeros([numFeatures]), { persistent: true });
    this.runningVar = this.addBuffer('running_var', tf.ones([numFeatures]), { persistent: true });
    this.numBatchesTracked = this.addBuffer('num_batches_tracked', tf.scalar(0, 'int32'), { persistent: true, int64: true });
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const c = x.shape[x.rank - 1];
    check(
      c === this.numFeatures,
      () => `BatchNorm2d expected ${this.numFeatures} channels in the last axis, got ${c} (shape [${x.shape.join(', ')}])`,
    );
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    if (opts.training) {
      const n = x.size / c;
      check(
        n > 1,
        () =>
          `BatchNorm2d in training needs more than one value per channel, got input shape [${x.shape.join(', ')}] (use a batch of 2 or more)`,
      );
      return tf.tidy(() => {
        const { mean, variance } = tf.moments(x, axes);
        const m = this.momentum;
        // running statistics (not on the loss's path, so no gradient): unbiased variance, as PyTorch
        tf.tidy(() => {
          const vv = variance.mul(n / (n - 1));
          this.runningMean.assign(this.runningMean.mul(1 - m).add(mean.mul(m)));
          this.runningVar.assign(this.runningVar.mul(1 - m).add(vv.mul(m)));
          this.numBatchesTracked.assign(this.numBatchesTracked.add(tf.scalar(1, 'int32')));
        });
        let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
        if (this.weight) y = tf.mul(y, this.weight.value);
        if (this.bias) y = tf.add(y, this.bias.value);
        return y;
      });
    }
    return tf.tidy(() => {
      let s: tf.Tensor = tf.rsqrt(tf.add(this.runningVar, this.eps));
      if (this.weight) s = tf.mul(s, this.weight.value);
      let shift: tf.Tensor = tf.neg(tf.mul(this.runningMean, s));
      if (this.bias) shift = tf.add(shift, this.bias.value);
      return tf.add(tf.mul(x, s), shift);
    });
  }
}
