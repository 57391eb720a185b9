import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { dropout } from '../layers/dropPath.js';
import { normal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module } from '../layers/module.js';

/** Options of {@link videoClsHead} (mmaction's `I3DHead` arguments in camelCase). */
export interface VideoClsHeadOptions {
  /** Channels of the backbone's last map. */
  inChans: number;
  numClasses: number;
  /** Dropout before the classifier (mmaction's `dropout_ratio`, default 0.5). */
  dropRate?: number;
  /** Standard deviation of the classifier's normal init (`init_std`, default 0.01). */
  initStd?: number;
}

/**
 * The video classification head of Video Swin / BEVT fine-tuning (mmaction's `I3DHead`): average over
 * (T, H, W), dropout, then a Linear. Input NTHWC `[B, T, H, W, C]` (or pooled `[B, C]`), output
 * `[B, numClasses]`. State-dict keys `fc_cls.weight`, `fc_cls.bias` (under `cls_head.` in mmaction
 * checkpoints: load with `loadTimmWeights(head, sd, { prefix: 'cls_head.' })` or strip it).
 */
export class VideoClsHead extends Module {
  readonly fcCls: Linear;
  constructor(readonly opts: VideoClsHeadOptions) {
    super();
    this.config = { ...opts };
    check(Number.isInteger(opts.inChans) && opts.inChans > 0, () => `inChans must be a positive integer, got ${opts.inChans}`);
    check(Number.isInteger(opts.numClasses) && opts.numClasses > 0, () => `numClasses must be a positive integer, got ${opts.numClasses}`);
    this.fcCls = this.addModule('fc_cls', new Linear(opts.inChans, opts.numClasses));
    tf.tidy(() => this.fcCls.weight.variable.assign(normal([opts.inChans, opts.numClasses], opts.initStd ?? 0.01)));
  }

  /** Pooled features `[B, C]` of an NTHWC map. */
  pool(x: tf.Tensor): tf.Tensor2D {
    check(
      x.rank === 5 || x.rank === 2,
      () => `VideoClsHead expects an NTHWC map [B, T, H, W, C] or pooled [B, C], got shape [${x.shape.join(', ')}]`,
    );
    check(
      x.shape[x.rank - 1] === this.opts.inChans,
      () => `VideoClsHead expected ${this.opts.inChans} channels (last axis), got shape [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => (x.rank === 2 ? x.clone() : tf.mean(x, [1, 2, 3])) as tf.Tensor2D);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.fcCls.forward(dropout(this.pool(x), this.opts.dropRate ?? 0.5, opts.training ?? false)) as tf.Tensor2D);
  }
}

/** Build mmaction's I3D-style video classification head. */
export function videoClsHead(opts: VideoClsHeadOptions): VideoClsHead {
  return new VideoClsHead(opts);
}
