import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { BatchNorm2d } from '../layers/batchNorm.js';
import { Conv2d } from '../layers/conv2d.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { Module } from '../layers/module.js';
import { dropout2d } from './dropout2d.js';
import { checkFeatureMaps, checkLevelInfo, LevelInfo } from './featureChecks.js';
import type { SegmentationForwardOptions } from './uperNet.js';

/** Options of {@link segmentationHead}. */
export interface SegmentationHeadOptions {
  /** Channels of each input level; all levels are resized to the first one's size and concatenated. */
  inChannels: number[];
  numClasses: number;
  /** BatchNorm on the concatenated features ('bn', default) or none. */
  norm?: 'bn' | 'none';
  /** Channel dropout before the classifier, active in training. Default 0. */
  dropoutRatio?: number;
  /** Input strides, checked against the backbone when given. */
  inStrides?: number[];
}

/**
 * A light semantic-segmentation head: per-pixel linear logits from one or several levels, as the
 * linear / multi-scale probes on frozen features of DINOv2 (Oquab et al. 2023, sec. 7.4): every level is
 * upsampled bilinearly (align_corners=False) to the first level's size, concatenated (mmseg's
 * `resize_concat`), batch-normalised, and classified by a 1x1 conv. Keys `bn.*`, `conv_seg.*`.
 */
export class SegmentationHead extends Module {
  /** How {@link attach} feeds it: the list of NHWC maps. */
  readonly inputKind = 'maps' as const;
  /** Its output is per-pixel logits (attach resizes them to the input size). */
  readonly segmentation = true;
  readonly bn: BatchNorm2d | null;
  readonly convSeg: Conv2d;
  readonly inChannels: number[];

  constructor(readonly opts: SegmentationHeadOptions) {
    super();
    this.config = { ...opts };
    const { inChannels, numClasses } = opts;
    check(
      Array.isArray(inChannels) && inChannels.length > 0 && inChannels.every((c) => Number.isInteger(c) && c > 0),
      () => `segmentationHead: inChannels must be a non-empty list of positive integers, got ${JSON.stringify(inChannels)}`,
    );
    check(
      Number.isInteger(numClasses) && numClasses > 0,
      () => `segmentationHead: numClasses must be a positive integer, got ${numClasses}`,
    );
    if (opts.inStrides)
      check(
        opts.inStrides.length === inChannels.length,
        () => `segmentationHead: inStrides lists ${opts.inStrides!.length} strides for ${inChannels.length} levels`,
      );
    this.inChannels = inChannels.slice();
    const total = inChannels.reduce((a, b) => a + b, 0);
    this.bn = (opts.norm ?? 'bn') === 'bn' ? this.addModule('bn', new BatchNorm2d(total)) : null;
    this.convSeg = this.addModule('conv_seg', new Conv2d(total, numClasses, 1));
  }

  /** Check the backbone levels (`featureInfo` entries) against `inChannels` (and `inStrides`). */
  checkLevelInfo(info: LevelInfo[]): void {
    checkLevelInfo(info, this.inChannels, 'segmentationHead', { pyramid: false, inStrides: this.opts.inStrides });
  }

  /** `feats`: NHWC maps -> logits `[B, H0, W0, numClasses]` at the first level's size (or `outSize`). */
  forward(feats: tf.Tensor[], opts: SegmentationForwardOptions = {}): tf.Tensor4D {
    checkFeatureMaps(feats, this.inChannels, 'segmentationHead', false);
    return tf.tidy(() => {
      const [, h, w] = feats[0].shape;
      let x: tf.Tensor =
        feats.length === 1
          ? feats[0]
          : tf.concat(
              feats.map((f) => interpolateNhwc(f, [h, w], { mode: 'bilinear' })),
              3,
            );
      if (this.bn) x = this.bn.forward(x, opts);
      x = dropout2d(x, this.opts.dropoutRatio ?? 0, opts.training ?? false);
      const logits = this.convSeg.forward(x);
      return opts.outSize ? interpolateNhwc(logits, opts.outSize, { mode: 'bilinear' }) : logits;
    });
  }
}

/** Build a {@link SegmentationHead}. */
export function segmentationHead(opts: SegmentationHeadOptions): SegmentationHead {
  return new SegmentationHead(opts);
}
