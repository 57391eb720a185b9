import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { FPN } from '../heads/fpn.js';
import { pixelCrossEntropy } from '../heads/pixelCrossEntropy.js';
import { pixelTextLoss } from '../heads/pixelTextLoss.js';
import { SegmentationHead } from '../heads/segmentationHead.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions, Module } from '../layers/module.js';
import { createModel } from '../models/registry.js';

/**
 * What a {@link DenseClipSegmentor} needs of its DenseCLIP model, structurally (the `DenseClip` of
 * `denseClip(config)` or `createModel(name)` fits): the backbone's levels, DenseCLIP's `after_extract_feat`
 * (refined text embeddings, the score map appended to level `r.scoreConcatIndex`) and the loss temperature.
 */
export interface DenseClipLike extends Module {
  /** Channels of the backbone's four levels before the score map is appended; null without a backbone. */
  readonly featureChannels: number[] | null;
  /** The resolved switches: the level that gets the score map, the temperature of the pixel-text loss. */
  readonly r: { readonly scoreConcatIndex: number; readonly tau: number };
  /** image NHWC -> the backbone's four NHWC levels, the global feature `[B, C]`, the pixel embeddings NHWC. */
  extractFeat(image: tf.Tensor, opts?: ForwardOptions): { features: tf.Tensor4D[]; globalFeat: tf.Tensor2D; visualEmbeddings: tf.Tensor4D };
  /** image NHWC, tokenIds `[K, contextLength]` -> the levels, the score map, the embeddings. */
  forward(image: tf.Tensor, tokenIds?: tf.Tensor | ForwardOptions, opts?: ForwardOptions): unknown;
  /** The levels with the score map appended to level `r.scoreConcatIndex`, the refined text embeddings, the score map. */
  afterExtractFeat(
    features: tf.Tensor[],
    globalFeat: tf.Tensor,
    visualEmbeddings: tf.Tensor,
    tokenIds: tf.Tensor,
    opts?: ForwardOptions,
  ): { textEmbeddings: tf.Tensor3D; features: tf.Tensor4D[]; scoreMap: tf.Tensor4D };
}

/** Options of {@link denseClipSegmentor}: the DenseCLIP model plus its segmentation neck and head. */
export interface DenseClipSegmentorOptions {
  /**
   * The DenseCLIP model: a built one (`denseClip(config)`, `createModel(name, overrides)`), which the segmentor
   * owns from then on (its dispose disposes it), or a registered DenseCLIP name (`createModel(name)`).
   */
  denseClip: DenseClipLike | string;
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

/** What {@link DenseClipSegmentor.segment} returns. */
export interface DenseClipSegmentorOutput {
  /** NHWC `[B, H/4, W/4, numClasses]` (or `outSize`) segmentation logits. */
  logits: tf.Tensor4D;
  /** NHWC `[B, h, w, K]` pixel-text score map (for the auxiliary loss). */
  scoreMap: tf.Tensor4D;
}

function isDenseClipLike(m: unknown): m is DenseClipLike {
  const d = m as Partial<DenseClipLike> | null;
  return (
    d instanceof Module &&
    typeof d.extractFeat === 'function' &&
    typeof d.afterExtractFeat === 'function' &&
    typeof d.r?.scoreConcatIndex === 'number' &&
    typeof d.r?.tau === 'number' &&
    'featureChannels' in d
  );
}

/** What was passed where a DenseCLIP model was expected, for the error. */
function kindOf(x: unknown): string {
  if (x instanceof Module) return x.constructor.name;
  if (x && typeof x === 'object') return 'backbone' in x ? 'a config object (build the model first)' : 'an object';
  return JSON.stringify(x) ?? String(x);
}

/**
 * The DenseCLIP segmentor (Rao et al. 2022, sec. 3.4): a DenseCLIP model whose score map is appended to one
 * backbone level, an FPN neck over the four levels and a segmentation head on the FPN outputs, trained with
 * pixel cross-entropy plus the auxiliary pixel-text loss on `scoreMap / tau`. The model's keys are the
 * segmentor's own, unprefixed, as in the official `DenseCLIP` segmentor (mmseg checkpoints load as they stand):
 * `backbone.*`, `text_encoder.*`, `context_decoder.*`, `contexts`, `gamma` (the model's), then `neck.*`,
 * `decode_head.*`.
 */
export class DenseClipSegmentor extends Module {
  /** The DenseCLIP model (its parameters, buffers and children are listed as the segmentor's own). */
  readonly denseClip: DenseClipLike;
  readonly neck: FPN;
  readonly decodeHead: SegmentationHead;
  readonly numClasses: number;
  readonly segOpts: Required<Omit<DenseClipSegmentorOptions, 'denseClip'>>;
  constructor(opts: DenseClipSegmentorOptions) {
    super();
    const given = opts?.denseClip;
    check(
      typeof given === 'string' || isDenseClipLike(given),
      () =>
        'denseClipSegmentor: denseClip must be a DenseCLIP model (denseClip(config), createModel(name, overrides)) ' +
        `or a registered DenseCLIP name, got ${kindOf(given)}`,
    );
    check(
      Number.isInteger(opts.numClasses) && opts.numClasses > 0,
      () => `denseClipSegmentor: numClasses must be a positive integer, got ${opts.numClasses}`,
    );
    const model = typeof given === 'string' ? createModel<Module>(given) : given;
    if (!isDenseClipLike(model)) {
      model.dispose();
      throw new VisBackbonesError(`denseClipSegmentor: '${String(given)}' builds a ${kindOf(model)}, not a DenseCLIP model`);
    }
    const chans = model.featureChannels?.slice();
    check(chans, () => "denseClipSegmentor needs an image backbone, not 'GivenFeatures'");
    this.denseClip = this.adoptModule(model); // its state is the segmentor's own, unprefixed, before the neck and head
    this.numClasses = opts.numClasses;
    this.segOpts = {
      numClasses: opts.numClasses,
      neckChannels: opts.neckChannels ?? 256,
      dropoutRatio: opts.dropoutRatio ?? 0.1,
      identityLossWeight: opts.identityLossWeight ?? 0.4,
      ignoreIndex: opts.ignoreIndex ?? 255,
    };
    this.config = { ...this.segOpts, denseClip: { ...model.config } };
    chans[model.r.scoreConcatIndex] += opts.numClasses;
    const c = this.segOpts.neckChannels;
    this.neck = this.addModule('neck', new FPN({ inChannels: chans, outChans: c }));
    this.decodeHead = this.addModule(
      'decode_head',
      new SegmentationHead({ inChannels: [c, c, c, c], numClasses: opts.numClasses, dropoutRatio: this.segOpts.dropoutRatio }),
    );
  }

  /** The DenseCLIP model's forward (image NHWC, tokenIds `[K, contextLength]`): its levels, score map and embeddings. */
  forward(image: tf.Tensor, tokenIds?: tf.Tensor | ForwardOptions, opts: ForwardOptions = {}): unknown {
    return this.denseClip.forward(image, tokenIds, opts);
  }

  /** image NHWC `[B, H, W, 3]`, tokenIds `[numClasses, contextLength]` -> logits at stride 4 and the score map. */
  segment(image: tf.Tensor, tokenIds: tf.Tensor, opts: ForwardOptions & { outSize?: [number, number] } = {}): DenseClipSegmentorOutput {
    check(
      tokenIds.rank === 2 && tokenIds.shape[0] === this.numClasses,
      () => `denseClipSegmentor: tokenIds must have one row per class (${this.numClasses}), got [${tokenIds.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      const x = this.denseClip.extractFeat(image, opts);
      const r = this.denseClip.afterExtractFeat(x.features, x.globalFeat, x.visualEmbeddings, tokenIds, opts);
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
          ? pixelTextLoss(scoreMap, labels, { tau: this.denseClip.r.tau, lossWeight: wgt, ignoreIndex: this.segOpts.ignoreIndex })
          : tf.scalar(0);
      return { decodeLoss, identityLoss, loss: tf.add(decodeLoss, identityLoss) as tf.Scalar } as unknown as tf.TensorContainer;
    }) as unknown as { decodeLoss: tf.Scalar; identityLoss: tf.Scalar; loss: tf.Scalar };
  }
}

/** Build a {@link DenseClipSegmentor}. */
export function denseClipSegmentor(opts: DenseClipSegmentorOptions): DenseClipSegmentor {
  return new DenseClipSegmentor(opts);
}
