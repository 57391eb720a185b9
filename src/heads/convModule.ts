import * as tf from '@tensorflow/tfjs';
import { BatchNorm2d } from '../layers/batchNorm.js';
import { Conv2d } from '../layers/conv2d.js';
import { ForwardOptions, Module } from '../layers/module.js';

/** Normalisation of a {@link ConvModule}: BatchNorm (mmseg's default `SyncBN`) or none. */
export type ConvModuleNorm = 'bn' | 'none';
/** Activation of a {@link ConvModule}. */
export type ConvAct = 'relu' | 'none';

/** Options of {@link ConvModule}. */
export interface ConvModuleOptions {
  stride?: number;
  padding?: number;
  /** Default 'bn'. */
  norm?: ConvModuleNorm;
  /** Default 'relu'. */
  act?: ConvAct;
  /** BatchNorm epsilon (default 1e-5). */
  normEps?: number;
}

/**
 * mmcv's `ConvModule` in its default order: convolution, normalisation, activation. The convolution
 * has a bias only when there is no norm (mmcv's `bias='auto'`). State-dict keys `conv.*` and `bn.*`,
 * as mmseg / mmdet checkpoints name them.
 */
export class ConvModule extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d | null;
  constructor(
    readonly inChans: number,
    readonly outChans: number,
    readonly kernelSize: number,
    readonly opts: ConvModuleOptions = {},
  ) {
    super();
    this.config = { inChans, outChans, kernelSize, ...opts };
    const norm = opts.norm ?? 'bn';
    this.conv = this.addModule(
      'conv',
      new Conv2d(inChans, outChans, kernelSize, { stride: opts.stride ?? 1, padding: opts.padding ?? 0, bias: norm === 'none' }),
    );
    this.bn = norm === 'bn' ? this.addModule('bn', new BatchNorm2d(outChans, { eps: opts.normEps ?? 1e-5 })) : null;
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y: tf.Tensor = this.conv.forward(x);
      if (this.bn) y = this.bn.forward(y, opts);
      if ((this.opts.act ?? 'relu') === 'relu') y = tf.relu(y);
      return y as tf.Tensor4D;
    });
  }
}
