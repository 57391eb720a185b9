import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module } from '../layers/module.js';
import { bevtSwin, SwinTransformerBEVT } from '../models/videoSwin/index.js';
import type { VideoSwinConfig } from '../models/videoSwin/index.js';
import { blockMask } from './blockMask.js';
import { hogTargets } from './hog.js';
import { checkPositiveInt, toPair } from './maskUtils.js';
import { normalizePatches, patchify } from './patchify.js';
import { SeedLike, toRng } from './rng.js';

/**
 * BEVT pretraining pieces (Wang et al. 2022, "BEVT: BERT Pretraining of Video Transformers"): tube
 * masks for clips, BEiT block masks for images, the masked visual-token loss of both streams, and a
 * pretraining module (backbone + prediction head) that also trains on HOG or pixel targets when no
 * dVAE tokenizer is at hand.
 */

/** Options of {@link beitBlockMask} (BEiT's `MaskingGenerator` arguments). */
export interface BeitBlockMaskOptions {
  inputSize: number | [number, number];
  numMaskingPatches: number;
  /** Default 4. */
  minNumPatches?: number;
  /** Default (null) `numMaskingPatches`. */
  maxNumPatches?: number | null;
  /** Default 0.3. */
  minAspect?: number;
  /** Default `1 / minAspect`. */
  maxAspect?: number;
  seed?: SeedLike;
}

/** BEiT block masking (BEVT's images, EVA): a union of rectangles, at most `numMaskingPatches` cells, `[h, w]` 0/1. */
export function beitBlockMask(opts: BeitBlockMaskOptions): tf.Tensor2D {
  return blockMask({ ...opts, maxNumPatches: opts.maxNumPatches ?? undefined, batch: undefined }) as tf.Tensor2D;
}

/** Options of {@link bevtTubeMask} (BEVT's `MaskedPositionGenerate` arguments). */
export interface BevtTubeMaskOptions extends Omit<BeitBlockMaskOptions, 'minAspect' | 'maxAspect'> {
  /** Fraction range `[lo, hi]` of the temporal slots a tube covers. Default `[0.5, 0.75]`. */
  maskedTubeRange?: [number, number];
  /** Frames per temporal token slot of the backbone input. Default 1. */
  temporalScale?: number;
  /** Frames of the clip (the loss mask's length). */
  clipLen: number;
}

/**
 * BEVT's tube masking: one BEiT block mask per clip repeated over a cyclic run of
 * `randint(lo, hi)` of the `T' = clipLen / temporalScale` temporal slots starting at
 * `randint(0, T' - 1)` (the run wraps to slot 0), `lo = max(int(range[0] T'), 1)`,
 * `hi = min(int(range[1] T'), T')`. `input` `[T', h, w]` goes to the backbone; `output`
 * `[clipLen, h, w]` (each slot repeated `temporalScale` times) selects the loss targets. 1 = masked.
 */
export function bevtTubeMask(opts: BevtTubeMaskOptions): { input: tf.Tensor3D; output: tf.Tensor3D } {
  const [h, w] = toPair(opts.inputSize);
  const ts = opts.temporalScale ?? 1;
  checkPositiveInt('clipLen', opts.clipLen);
  checkPositiveInt('temporalScale', ts);
  check(opts.clipLen % ts === 0, () => `clipLen ${opts.clipLen} is not a multiple of temporalScale ${ts}`);
  const [r0, r1] = opts.maskedTubeRange ?? [0.5, 0.75];
  check(r0 >= 0 && r1 <= 1 && r0 <= r1, () => `maskedTubeRange must be 0 <= lo <= hi <= 1, got [${r0}, ${r1}]`);
  const slots = opts.clipLen / ts;
  const rng = toRng(opts.seed);
  const plane = beitBlockMask({ ...opts, seed: rng });
  const cells = plane.dataSync();
  plane.dispose();
  const lo = Math.max(Math.trunc(r0 * slots), 1);
  const hi = Math.min(Math.trunc(r1 * slots), slots);
  const start = rng.randint(0, slots - 1);
  const len = rng.randint(lo, Math.max(lo, hi));
  const input = new Float32Array(slots * h * w);
  for (let k = 0; k < len; k++) input.set(cells, ((start + k) % slots) * h * w);
  const output = new Float32Array(opts.clipLen * h * w);
  for (let t = 0; t < opts.clipLen; t++)
    output.set(input.subarray(Math.floor(t / ts) * h * w, (Math.floor(t / ts) + 1) * h * w), t * h * w);
  return { input: tf.tensor3d(input, [slots, h, w]), output: tf.tensor3d(output, [opts.clipLen, h, w]) };
}

/**
 * Cross-entropy of `logits` `[B, L, V]` against `targetIds` `[B, L]` averaged over the masked tokens of
 * the whole batch (`mask` `[B, L]` 0/1), and the argmax accuracy over them (no gradient). BEVT's
 * `loss_mask` / BEiT's masked image modelling loss. Both are 0 when nothing is masked.
 */
export function maskedTokenLoss(logits: tf.Tensor, targetIds: tf.Tensor, mask: tf.Tensor): { loss: tf.Scalar; accuracy: tf.Scalar } {
  check(logits.rank === 3, () => `maskedTokenLoss: logits must be [B, L, V], got shape [${logits.shape.join(', ')}]`);
  const [b, l, v] = logits.shape;
  check(targetIds.size === b * l, () => `maskedTokenLoss: target ids must be [${b}, ${l}], got shape [${targetIds.shape.join(', ')}]`);
  check(mask.size === b * l, () => `maskedTokenLoss: mask must be [${b}, ${l}] (0/1), got shape [${mask.shape.join(', ')}]`);
  return tf.tidy(() => {
    const ids = (targetIds.dtype === 'int32' ? targetIds : tf.round(targetIds).toInt()).reshape([b * l]) as tf.Tensor1D;
    const m = (mask.dtype === 'float32' ? mask : mask.toFloat()).reshape([b * l]);
    const lg = logits.reshape([b * l, v]);
    const logp = tf.logSoftmax(lg);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(ids, v)), -1);
    const count = tf.maximum(tf.sum(m), 1);
    const loss = tf.div(tf.neg(tf.sum(tf.mul(picked, m))), count) as tf.Scalar;
    const hit = tf.equal(tf.argMax(lg, -1), ids).toFloat();
    const accuracy = tf.div(tf.sum(tf.mul(hit, m)), count) as tf.Scalar;
    return { loss, accuracy };
  });
}

/** Inputs of {@link bevtLoss}. */
export interface BevtLossInputs {
  /** `[N, T h w, V]` video token logits. */
  logits3d: tf.Tensor;
  /** `[N, T, h, w]` target ids. */
  targets3d: tf.Tensor;
  /** `[N, T, h, w]` 0/1 loss mask (the tube mask's `output`). */
  mask3d: tf.Tensor;
  /** `[N2, h w, V]` image token logits. */
  logits2d: tf.Tensor;
  targets2d: tf.Tensor;
  mask2d: tf.Tensor;
}

/** BEVT's losses: masked-token cross-entropy per stream (weighted), their sum, and the masked accuracies. */
export function bevtLoss(
  inputs: BevtLossInputs,
  opts: { lossWeight3d?: number; lossWeight2d?: number } = {},
): { loss: tf.Scalar; lossCls3d: tf.Scalar; lossCls2d: tf.Scalar; maskAcc3d: tf.Scalar; maskAcc2d: tf.Scalar } {
  return tf.tidy(() => {
    const flat = (t: tf.Tensor, lg: tf.Tensor) => t.reshape([lg.shape[0], -1]);
    const v = maskedTokenLoss(inputs.logits3d, flat(inputs.targets3d, inputs.logits3d), flat(inputs.mask3d, inputs.logits3d));
    const i = maskedTokenLoss(inputs.logits2d, flat(inputs.targets2d, inputs.logits2d), flat(inputs.mask2d, inputs.logits2d));
    const lossCls3d = tf.mul(v.loss, opts.lossWeight3d ?? 1) as tf.Scalar;
    const lossCls2d = tf.mul(i.loss, opts.lossWeight2d ?? 1) as tf.Scalar;
    return { loss: tf.add(lossCls3d, lossCls2d) as tf.Scalar, lossCls3d, lossCls2d, maskAcc3d: v.accuracy, maskAcc2d: i.accuracy };
  });
}

/** What {@link BevtPretraining} predicts for every output token. */
export type BevtTarget = 'tokens' | 'hog' | 'pixel';

/** Options of {@link BevtPretraining}. */
export interface BevtPretrainingOptions {
  /** The two-stream backbone or its config (`SwinTransformerBEVT` arguments). */
  backbone?: SwinTransformerBEVT | VideoSwinConfig;
  /**
   * `'tokens'`: dVAE code ids given by the caller, cross-entropy (BEVT); `'hog'`: HOG histograms of each
   * 16x16 cell of every frame / image, masked MSE (MaskFeat-style); `'pixel'`: the per-patch normalised
   * pixels of that cell, masked MSE (MAE-style). Default `'tokens'`.
   */
  target?: BevtTarget;
  /** Codebook size for `'tokens'` (8192, DALL-E). */
  vocabSize?: number;
  lossWeight3d?: number;
  lossWeight2d?: number;
}

/** One pretraining batch: a video part, an image part, or both (mixed). */
export interface BevtBatch {
  /** Clips NTHWC `[N, T, H, W, C]`. */
  video?: tf.Tensor;
  /** Backbone mask `[N, T', h, w]` (the tube mask's `input`). */
  videoMask?: tf.Tensor;
  /** Loss mask `[N, T, h, w]` (the tube mask's `output`). */
  videoLossMask?: tf.Tensor;
  /** `'tokens'` only: code ids `[N, T, h, w]`. */
  videoTargets?: tf.Tensor;
  /** Images NHWC `[N2, H, W, C]`. */
  image?: tf.Tensor;
  /** `[N2, h, w]`, backbone and loss mask. */
  imageMask?: tf.Tensor;
  /** `'tokens'` only: code ids `[N2, h, w]`. */
  imageTargets?: tf.Tensor;
}

/** Losses of one {@link BevtPretraining.forwardLoss} call (absent streams give 0). */
export interface BevtLosses {
  loss: tf.Scalar;
  lossCls3d: tf.Scalar;
  lossCls2d: tf.Scalar;
}

/**
 * BEVT pretraining (sec. 3): the two-stream backbone and a prediction head on its 1/16 tokens,
 * `cls_head.lm_head` (Linear C -> vocab) for code ids, or a regression head (`cls_head.pred`) for HOG /
 * pixel targets. A batch may hold videos, images or both: pass both to mix the streams in one step
 * (as BEVT's multi-source iterations do), or alternate batches of one kind (see {@link bevtStreamSchedule}).
 */
export class BevtPretraining extends Module {
  readonly backbone: SwinTransformerBEVT;
  readonly head: Linear;
  readonly target: BevtTarget;
  private readonly targetDim: number;
  constructor(readonly opts: BevtPretrainingOptions = {}) {
    super();
    this.config = { ...opts, backbone: opts.backbone instanceof SwinTransformerBEVT ? opts.backbone.config : opts.backbone };
    this.backbone = this.addModule(
      'backbone',
      opts.backbone instanceof SwinTransformerBEVT ? opts.backbone : bevtSwin(opts.backbone ?? {}),
    );
    this.target = opts.target ?? 'tokens';
    const c = this.backbone.numFeatures;
    const inC = this.backbone.inChans;
    this.targetDim = this.target === 'tokens' ? (opts.vocabSize ?? 8192) : this.target === 'hog' ? 9 * inC : 16 * 16 * inC;
    const head = new HeadHolder(this.target === 'tokens' ? 'lm_head' : 'pred', new Linear(c, this.targetDim));
    this.addModule('cls_head', head);
    this.head = head.linear;
  }

  /** Per-token regression targets `[B, h w, D]` of NHWC frames or images (16x16 cells). */
  private regressionTargets(images: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      if (this.target === 'hog') {
        const hog = hogTargets(images, { pool: 16 });
        return hog.reshape([hog.shape[0], -1, hog.shape[3]]) as tf.Tensor3D;
      }
      return normalizePatches(patchify(images, 16)) as tf.Tensor3D;
    });
  }

  /** Masked loss of one stream: predictions `[B, L, D]`, loss mask `[B, L]`, and ids or regression targets. */
  private streamLoss(pred: tf.Tensor3D, mask: tf.Tensor, ids: tf.Tensor | undefined, pixels: () => tf.Tensor): tf.Scalar {
    const [b, l] = pred.shape;
    if (this.target === 'tokens') {
      check(ids !== undefined, () => `target 'tokens' needs the code ids of every stream in the batch (videoTargets / imageTargets)`);
      return maskedTokenLoss(pred, ids!.reshape([b, l]), mask.reshape([b, l])).loss;
    }
    return tf.tidy(() => {
      const tgt = pixels();
      check(tgt.shape[1] === l, () => `the targets give ${tgt.shape[1]} cells per sample, the backbone ${l} tokens`);
      const m = mask.toFloat().reshape([b, l, 1]);
      const err = tf.mean(tf.square(tf.sub(pred, tgt)), -1, true);
      return tf.div(tf.sum(tf.mul(err, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar;
    });
  }

  /** The weighted losses of a batch (video stream, image stream, their sum). */
  forwardLoss(batch: BevtBatch, opts: ForwardOptions = {}): BevtLosses {
    check(batch.video !== undefined || batch.image !== undefined, () => 'a BEVT batch needs a video part, an image part, or both');
    return tf.tidy(() => {
      let l3: tf.Scalar = tf.scalar(0);
      let l2: tf.Scalar = tf.scalar(0);
      if (batch.video) {
        check(batch.videoLossMask !== undefined, () => 'videoLossMask [N, T, h, w] is required with a video batch');
        const tokens = this.backbone.forward(batch.video, { training: opts.training, mask: batch.videoMask });
        const pred = this.head.forward(tokens) as tf.Tensor3D;
        const v = batch.video;
        l3 = tf.mul(
          this.streamLoss(pred, batch.videoLossMask!, batch.videoTargets, () => {
            const [n, t, h, w, c] = v.shape;
            const per = this.regressionTargets(v.reshape([n * t, h, w, c]));
            return per.reshape([n, -1, per.shape[2]]);
          }),
          this.opts.lossWeight3d ?? 1,
        ) as tf.Scalar;
      }
      if (batch.image) {
        check(batch.imageMask !== undefined, () => 'imageMask [N2, h, w] is required with an image batch');
        const tokens = this.backbone.forwardImage(batch.image, { training: opts.training, mask: batch.imageMask });
        const pred = this.head.forward(tokens) as tf.Tensor3D;
        const im = batch.image;
        l2 = tf.mul(
          this.streamLoss(pred, batch.imageMask!, batch.imageTargets, () => this.regressionTargets(im)),
          this.opts.lossWeight2d ?? 1,
        ) as tf.Scalar;
      }
      return { loss: tf.add(l3, l2) as tf.Scalar, lossCls3d: l3, lossCls2d: l2 };
    });
  }

  /** The total loss (what an optimizer minimises). */
  forward(batch: BevtBatch, opts: ForwardOptions = {}): tf.Scalar {
    return tf.tidy(() => this.forwardLoss(batch, opts).loss);
  }
}

/** `cls_head` with its one Linear under the reference's name. */
class HeadHolder extends Module {
  constructor(
    name: string,
    readonly linear: Linear,
  ) {
    super();
    this.addModule(name, linear);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.linear.forward(x);
  }
}

/**
 * Which stream step `i` trains: `'mix'` both, `'alternate'` video on even steps and images on odd ones,
 * or `{ videoEvery: k }` one video step after every `k - 1` image steps.
 */
export function bevtStreamSchedule(
  step: number,
  mode: 'mix' | 'alternate' | { videoEvery: number } = 'mix',
): { video: boolean; image: boolean } {
  if (mode === 'mix') return { video: true, image: true };
  const k = mode === 'alternate' ? 2 : mode.videoEvery;
  checkPositiveInt('videoEvery', k);
  const video = step % k === 0;
  return { video, image: !video };
}
