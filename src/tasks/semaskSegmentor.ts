import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { FPN } from '../heads/fpn.js';
import { pixelCrossEntropy } from '../heads/pixelCrossEntropy.js';
import { SegmentationHead } from '../heads/segmentationHead.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions, Module } from '../layers/module.js';
import type { Backbone } from '../models/backbone.js';

/**
 * A backbone that also predicts a semantic prior map per stage (SeMask's semantic layers): its
 * `forwardSemantic` returns, for each `outIndices` stage, the NHWC features and class logits.
 */
export interface SemanticPriorBackbone extends Backbone {
  forwardSemantic(x: tf.Tensor, opts?: ForwardOptions): { features: tf.Tensor4D[]; semanticMaps: tf.Tensor4D[] };
  /** False when some returned stage has no semantic layer (then only the features are used). */
  readonly hasSemanticLayers: boolean;
}

/** Whether `b` offers semantic prior maps for every stage it returns. */
export function hasSemanticPrior(b: Backbone): b is SemanticPriorBackbone {
  const s = b as unknown as Partial<SemanticPriorBackbone>;
  return typeof s.forwardSemantic === 'function' && s.hasSemanticLayers === true;
}

/** Options of {@link semaskSegmentor}. */
export interface SemaskSegmentorOptions {
  /** A hierarchical backbone returning 4 levels at strides increasing by 2x (its `outIndices`). */
  backbone: Backbone;
  numClasses: number;
  /** Width of the FPN and of the head input (SeMask-FPN: 256). */
  channels?: number;
  /** Weight of the semantic-prior loss (SeMask-FPN's `cate_w`, 0.4). */
  cateW?: number;
  /** Label ignored by both losses (255). */
  ignoreIndex?: number;
  /** Channel dropout before the classifier in training (0.1). */
  dropoutRatio?: number;
  /** Norm of the head ('bn', default, or 'none'). */
  headNorm?: 'bn' | 'none';
}

/** What {@link SemaskSegmentor.forward} returns, at the input image size. */
export type SemaskSegmentorOutput = {
  /** Segmentation logits `[B, H, W, numClasses]`. */
  logits: tf.Tensor4D;
  /** The semantic decoder's prior logits `[B, H, W, numClasses]` (null without semantic layers). */
  semanticLogits: tf.Tensor4D | null;
};

/** The losses of one batch (mmseg's `loss_ce` and `loss_cate`) and their sum. */
export type SemaskLosses = { total: tf.Scalar; decode: tf.Scalar; semantic: tf.Scalar | null };

/**
 * SeMask-FPN as a trainable segmentor (Jain et al. 2021, sec. 3.3): the backbone's stage features go
 * through an FPN and a segmentation head; the stage semantic prior maps go through the lightweight
 * semantic decoder of the official `BranchFPNHead` (no parameters: stage i is upsampled 2x bilinearly
 * `log2(stride_i / stride_0)` times, resized to the first stage's grid and the maps are summed). Both are
 * resized bilinearly to the label size and trained with cross-entropy, the prior's weighted by `cateW`:
 * `loss = CE(decode) + cateW * CE(prior)` (mmseg's mean over all pixels, `ignoreIndex` excluded). A
 * backbone without semantic layers gives the plain FPN segmentor (the ablation). State-dict keys
 * `backbone.*`, `neck.*`, `decode_head.*`.
 */
export class SemaskSegmentor extends Module {
  readonly backbone: Backbone;
  readonly neck: FPN;
  readonly decodeHead: SegmentationHead;
  readonly strides: number[];
  readonly semantic: boolean;

  constructor(readonly opts: SemaskSegmentorOptions) {
    super();
    const { backbone, numClasses } = opts;
    this.config = {
      numClasses,
      channels: opts.channels,
      cateW: opts.cateW,
      ignoreIndex: opts.ignoreIndex,
      dropoutRatio: opts.dropoutRatio,
      headNorm: opts.headNorm,
    };
    check(
      Number.isInteger(numClasses) && numClasses > 0,
      () => `semaskSegmentor: numClasses must be a positive integer, got ${numClasses}`,
    );
    const levels = backbone.outIndices.map((i) => backbone.featureInfo[i]);
    check(levels.length > 0, () => 'semaskSegmentor: the backbone returns no levels (outIndices is empty)');
    this.strides = levels.map((l) => l.reduction);
    this.strides.forEach((s, i) =>
      check(i === 0 || s === 2 * this.strides[i - 1], () => `semaskSegmentor: level strides must double, got ${this.strides.join(', ')}`),
    );
    this.semantic = hasSemanticPrior(backbone);
    if (this.semantic) {
      const k = (backbone as unknown as { config: { numCls?: number } }).config.numCls;
      check(
        k === undefined || k === numClasses,
        () => `semaskSegmentor: the backbone's semantic maps have ${k} classes but numClasses is ${numClasses}`,
      );
    }
    const channels = opts.channels ?? 256;
    this.backbone = this.addModule('backbone', backbone);
    this.neck = this.addModule('neck', new FPN({ inChannels: levels.map((l) => l.numChs), outChans: channels }));
    this.decodeHead = this.addModule(
      'decode_head',
      new SegmentationHead({
        inChannels: levels.map(() => channels),
        numClasses,
        norm: opts.headNorm ?? 'bn',
        dropoutRatio: opts.dropoutRatio ?? 0.1,
      }),
    );
  }

  /**
   * The semantic decoder: the sum of the stage prior maps at the first stage's grid (each map upsampled
   * 2x bilinearly per halving of resolution, then resized to that grid, as the official `cls_scale_heads`).
   */
  semanticDecoder(maps: tf.Tensor4D[]): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h0, w0] = maps[0].shape;
      let sum: tf.Tensor4D = maps[0].clone();
      for (let i = 1; i < maps.length; i++) {
        let m = maps[i];
        const times = Math.max(1, Math.round(Math.log2(this.strides[i] / this.strides[0])));
        for (let t = 0; t < times; t++) m = interpolateNhwc(m, [2 * m.shape[1], 2 * m.shape[2]], { mode: 'bilinear' });
        if (m.shape[1] !== h0 || m.shape[2] !== w0) m = interpolateNhwc(m, [h0, w0], { mode: 'bilinear' });
        sum = tf.add(sum, m);
      }
      return sum;
    });
  }

  /** Logits at the backbone's finest level and the semantic decoder's output (or null). */
  private run(x: tf.Tensor, opts: ForwardOptions): tf.Tensor4D[] {
    return tf.tidy(() => {
      let feats: tf.Tensor4D[];
      let prior: tf.Tensor4D | null = null;
      if (this.semantic) {
        const out = (this.backbone as SemanticPriorBackbone).forwardSemantic(x, opts);
        feats = out.features;
        prior = this.semanticDecoder(out.semanticMaps);
      } else feats = this.backbone.forwardFeatureMaps(x, opts);
      const logits = this.decodeHead.forward(this.neck.forward(feats, opts), opts);
      return prior ? [logits, prior] : [logits];
    });
  }

  /** `x`: NHWC images -> segmentation (and semantic prior) logits resized to the input size. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): SemaskSegmentorOutput {
    const [, h, w] = x.shape;
    const r = tf.tidy(() => this.run(x, opts).map((t) => interpolateNhwc(t, [h, w], { mode: 'bilinear' })));
    return { logits: r[0], semanticLogits: r[1] ?? null };
  }

  /** The training losses for NHWC images `x` and labels `[B, H, W]` (int32 class indices). */
  losses(x: tf.Tensor, labels: tf.Tensor, opts: ForwardOptions = {}): SemaskLosses {
    check(labels.rank === 3, () => `semaskSegmentor: labels must be [B, H, W] class indices, got shape [${labels.shape.join(', ')}]`);
    const [, lh, lw] = labels.shape;
    const ce = { ignoreIndex: this.opts.ignoreIndex ?? 255, avgNonIgnore: false };
    const r = tf.tidy(() => {
      const [logits, prior] = this.run(x, opts);
      const decode = pixelCrossEntropy(interpolateNhwc(logits, [lh, lw], { mode: 'bilinear' }), labels, ce) as tf.Scalar;
      if (!prior) return [decode, decode.clone()];
      const sem = tf.mul(
        pixelCrossEntropy(interpolateNhwc(prior, [lh, lw], { mode: 'bilinear' }), labels, { ...ce, validate: false }),
        this.opts.cateW ?? 0.4,
      ) as tf.Scalar;
      return [tf.add(decode, sem), decode, sem];
    });
    return { total: r[0] as tf.Scalar, decode: r[1] as tf.Scalar, semantic: (r[2] as tf.Scalar | undefined) ?? null };
  }

  /** The total loss as one scalar (for `optimizer.minimize`). */
  loss(x: tf.Tensor, labels: tf.Tensor, opts: ForwardOptions = {}): tf.Scalar {
    return tf.tidy(() => {
      const l = this.losses(x, labels, opts);
      return l.total;
    });
  }
}

/** Build a {@link SemaskSegmentor}. */
export function semaskSegmentor(opts: SemaskSegmentorOptions): SemaskSegmentor {
  return new SemaskSegmentor(opts);
}
