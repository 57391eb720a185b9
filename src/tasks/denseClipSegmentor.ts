import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { FPN } from '../heads/fpn.js';
import { pixelCrossEntropy } from '../heads/pixelCrossEntropy.js';
import { SegmentationHead } from '../heads/segmentationHead.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions } from '../layers/module.js';
import { DenseClip, DenseClipConfig, pixelTextLoss } from '../models/denseclip/index.js';

/** Options of {@link denseClipSegmentor}: the DenseCLIP model plus its segmentation neck and head. */
export interface DenseClipSegmentorOptions {
  /** DenseCLIP's constructor arguments (backbone, text encoder, context decoder, ...). */
  denseClip: DenseClipConfig;
  /** Classes = rows of the token ids passed to forward. */
  numClasses: number;
  /** Channels of the FPN neck (mmseg configs: 256). */
  neckChannels?: number;
  /** Channel dropout before the classifier (default 0.1). */
  dropoutRatio?: number;
  /** Weight of the auxiliary pixel-text loss (the identity head, default 0.4; 0 disables it). */
  identityLossWeight?: number;
  /** Ignored label (default 255). */
  ignoreIndex?: number;
}

/** What {@link DenseClipSegmentor.forward} returns. */
export interface DenseClipSegmentorOutput {
  /** NHWC `[B, H/4, W/4, numClasses]` (or `outSize`) segmentation logits. */
  logits: tf.Tensor4D;
  /** NHWC `[B, h, w, K]` pixel-text score map (for the auxiliary loss). */
  scoreMap: tf.Tensor4D;
}

/**
 * The DenseCLIP segmentor (Rao et al. 2022, sec. 3.4): a {@link DenseClip} model whose score map is appended to
 * one backbone level, an FPN neck over the four levels and a segmentation head on the FPN outputs, trained
 * with pixel cross-entropy plus the auxiliary pixel-text loss on `scoreMap / tau`. Keys: DenseCLIP's
 * (`backbone.*`, `text_encoder.*`, `context_decoder.*`, `contexts`, `gamma`), `neck.*`, `decode_head.*`.
 */
export class DenseClipSegmentor extends DenseClip {
  readonly neck: FPN;
  readonly decodeHead: SegmentationHead;
  readonly numClasses: number;
  readonly segOpts: Required<Omit<DenseClipSegmentorOptions, 'denseClip'>>;
  constructor(opts: DenseClipSegmentorOptions) {
    super(opts.denseClip);
    check(this.backbone, () => "denseClipSegmentor needs an image backbone, not 'GivenFeatures'");
    check(
      Number.isInteger(opts.numClasses) && opts.numClasses > 0,
      () => `denseClipSegmentor: numClasses must be a positive integer, got ${opts.numClasses}`,
    );
    this.numClasses = opts.numClasses;
    this.segOpts = {
      numClasses: opts.numClasses,
      neckChannels: opts.neckChannels ?? 256,
      dropoutRatio: opts.dropoutRatio ?? 0.1,
      identityLossWeight: opts.identityLossWeight ?? 0.4,
      ignoreIndex: opts.ignoreIndex ?? 255,
    };
    this.config = { ...opts };
    const bb = opts.denseClip.backbone as { type: string; width: number };
    const chans =
      bb.type === 'CLIPResNetWithAttention' ? [4, 8, 16, 32].map((m) => m * bb.width) : [bb.width, bb.width, bb.width, bb.width];
    chans[this.r.scoreConcatIndex] += opts.numClasses;
    const c = this.segOpts.neckChannels;
    this.neck = this.addModule('neck', new FPN({ inChannels: chans, outChans: c }));
    this.decodeHead = this.addModule(
      'decode_head',
      new SegmentationHead({ inChannels: [c, c, c, c], numClasses: opts.numClasses, dropoutRatio: this.segOpts.dropoutRatio }),
    );
  }

  /** image NHWC `[B, H, W, 3]`, tokenIds `[numClasses, contextLength]` -> logits at stride 4 and the score map. */
  segment(image: tf.Tensor, tokenIds: tf.Tensor, opts: ForwardOptions & { outSize?: [number, number] } = {}): DenseClipSegmentorOutput {
    check(
      tokenIds.rank === 2 && tokenIds.shape[0] === this.numClasses,
      () => `denseClipSegmentor: tokenIds must have one row per class (${this.numClasses}), got [${tokenIds.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      const x = this.extractFeat(image, opts);
      const r = this.afterExtractFeat(x.features, x.globalFeat, x.visualEmbeddings, tokenIds, opts);
      const logits = this.decodeHead.forward(this.neck.forward(r.features, opts), { ...opts, outSize: opts.outSize });
      return { logits, scoreMap: r.scoreMap } as unknown as tf.TensorContainer;
    }) as unknown as DenseClipSegmentorOutput;
  }

  /**
   * The training loss of one batch: pixel cross-entropy of the logits (resized to the labels) plus the weighted
   * pixel-text loss of the score map. labels `[B, H, W]` class indices (ignoreIndex for unlabelled pixels).
   */
  loss(
    image: tf.Tensor,
    tokenIds: tf.Tensor,
    labels: tf.Tensor,
    opts: ForwardOptions = {},
  ): { decodeLoss: tf.Scalar; identityLoss: tf.Scalar; loss: tf.Scalar } {
    const [, h, w] = labels.shape as [number, number, number];
    return tf.tidy(() => {
      const { logits, scoreMap } = this.segment(image, tokenIds, opts);
      const full = interpolateNhwc(logits, [h, w], { mode: 'bilinear' });
      const decodeLoss = pixelCrossEntropy(full, labels, { ignoreIndex: this.segOpts.ignoreIndex, avgNonIgnore: false }) as tf.Scalar;
      const wgt = this.segOpts.identityLossWeight;
      const identityLoss =
        wgt > 0
          ? pixelTextLoss(scoreMap, labels, { tau: this.r.tau, lossWeight: wgt, ignoreIndex: this.segOpts.ignoreIndex })
          : tf.scalar(0);
      return { decodeLoss, identityLoss, loss: tf.add(decodeLoss, identityLoss) as tf.Scalar } as unknown as tf.TensorContainer;
    }) as unknown as { decodeLoss: tf.Scalar; identityLoss: tf.Scalar; loss: tf.Scalar };
  }
}

/** Build a {@link DenseClipSegmentor}. */
export function denseClipSegmentor(opts: DenseClipSegmentorOptions): DenseClipSegmentor {
  return new DenseClipSegmentor(opts);
}
