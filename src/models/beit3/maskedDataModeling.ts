import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { BEiT3, BEiT3Inputs } from './beit3.js';
import { BEiT3Config } from './config.js';

/** Options of {@link BEiT3MaskedDataModeling}. */
export interface BEiT3MaskedDataModelingOptions {
  /** Size of the visual-token codebook the masked patches are predicted in (BEiT v2's VQ-KD: 8192). */
  visualVocabSize?: number;
}

/** Logits of the masked data-modeling heads. */
export interface MaskedDataModelingLogits {
  /** `[B, numPatches, visualVocabSize]` (with an image; the class token is left out). */
  imageLogits: tf.Tensor3D | null;
  /** `[B, Lt, vocabSize]` (with a text). */
  textLogits: tf.Tensor3D | null;
}

/**
 * BEiT-3's pretraining task, masked data modeling (Wang et al. 2022, sec. 2.2): one shared Multiway Transformer
 * predicts the visual tokens of masked patches (`mim_head`, over the tokenizer's codebook) and the ids of masked
 * text tokens (`mlm_head`, over the text vocabulary), from images, texts and image-text pairs. Masked text
 * tokens are replaced by the caller (the data pipeline puts the tokenizer's mask id in `textIds`); masked
 * patches through `visionMaskedPosition`. Keys `beit3.*` (unilm's layout), `mim_head.*`, `mlm_head.*`.
 */
export class BEiT3MaskedDataModeling extends Module {
  readonly beit3: BEiT3;
  readonly mimHead: Linear;
  readonly mlmHead: Linear;
  constructor(config: BEiT3Config = {}, opts: BEiT3MaskedDataModelingOptions = {}) {
    super();
    this.beit3 = this.addModule('beit3', new BEiT3(config));
    const c = this.beit3.config;
    const v = opts.visualVocabSize ?? 8192;
    check(Number.isInteger(v) && v > 1, () => `BEiT3MaskedDataModeling: visualVocabSize must be an integer > 1, got ${v}`);
    this.config = { config: { ...c }, visualVocabSize: v };
    this.mimHead = this.addModule('mim_head', new Linear(c.encoderEmbedDim, v));
    this.mlmHead = this.addModule('mlm_head', new Linear(c.encoderEmbedDim, c.vocabSize));
  }

  forward(inputs: BEiT3Inputs, opts: ForwardOptions = {}): MaskedDataModelingLogits {
    return tf.tidy(() => {
      const out = this.beit3.forward(inputs, opts);
      const x = out.encoderOut;
      const [b, t, d] = x.shape as [number, number, number];
      const split = out.multiwaySplitPosition;
      const np = this.beit3.numPatches;
      let imageLogits: tf.Tensor3D | null = null;
      let textLogits: tf.Tensor3D | null = null;
      if (inputs.image) imageLogits = this.mimHead.forward(tf.slice(x, [0, 1, 0], [b, np, d])) as tf.Tensor3D;
      if (inputs.textIds) {
        const start = split === 0 ? 0 : split;
        textLogits = this.mlmHead.forward(tf.slice(x, [0, start, 0], [b, t - start, d])) as tf.Tensor3D;
      }
      return { imageLogits, textLogits } as unknown as tf.TensorContainer;
    }) as unknown as MaskedDataModelingLogits;
  }
}

/** Build a {@link BEiT3MaskedDataModeling} model. */
export function beit3MaskedDataModeling(config: BEiT3Config = {}, opts: BEiT3MaskedDataModelingOptions = {}): BEiT3MaskedDataModeling {
  return new BEiT3MaskedDataModeling(config, opts);
}

/**
 * Cross-entropy of `logits` `[B, L, V]` against integer `targets` `[B, L]`, averaged over the positions where
 * `mask` `[B, L]` is 1 (over the whole batch, as BEiT's masked-token losses). Returns 0 when nothing is masked.
 */
export function maskedTokenCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  check(logits.rank === 3, () => `maskedTokenCrossEntropy: logits must be [B, L, V], got shape [${logits.shape.join(', ')}]`);
  const [b, l, v] = logits.shape as [number, number, number];
  const same = (t: tf.Tensor) => t.rank === 2 && t.shape[0] === b && t.shape[1] === l;
  check(same(targets), () => `maskedTokenCrossEntropy: targets must be [${b}, ${l}], got [${targets.shape.join(', ')}]`);
  check(same(mask), () => `maskedTokenCrossEntropy: mask must be [${b}, ${l}], got [${mask.shape.join(', ')}]`);
  const ids = targets.dataSync();
  const m = mask.dataSync();
  for (let i = 0; i < ids.length; i++) {
    if (m[i])
      check(
        Number.isInteger(ids[i]) && ids[i] >= 0 && ids[i] < v,
        () => `maskedTokenCrossEntropy: target ${ids[i]} at flat index ${i} is outside [0, ${v})`,
      );
  }
  return tf.tidy(() => {
    const safe = tf.where(mask.toBool(), targets.toInt(), tf.zerosLike(targets.toInt()));
    const logp = tf.logSoftmax(logits.reshape([b * l, v]));
    const nll = tf.neg(tf.sum(tf.mul(logp, tf.oneHot(safe.reshape([b * l]), v)), 1));
    const w = mask.toFloat().reshape([b * l]);
    return tf.div(tf.sum(tf.mul(nll, w)), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
  });
}

/** Targets of {@link maskedDataModelingLoss}: the ids to predict and where (1 = masked, predicted). */
export interface MaskedDataModelingTargets {
  /** Visual-token ids `[B, numPatches]` and the masked patches `[B, numPatches]`. */
  imageTargets?: tf.Tensor;
  imageMask?: tf.Tensor;
  /** Original text ids `[B, Lt]` and the masked text positions `[B, Lt]`. */
  textTargets?: tf.Tensor;
  textMask?: tf.Tensor;
}

/**
 * BEiT-3's masked data-modeling objective: cross-entropy of the masked image tokens plus cross-entropy of the
 * masked text tokens (each averaged over its masked positions). A function of tensors, so it composes with the
 * trainer: `loss: (batch) => maskedDataModelingLoss(model.forward(batch.inputs, { training: true }), batch.targets).loss`.
 */
export function maskedDataModelingLoss(
  logits: MaskedDataModelingLogits,
  targets: MaskedDataModelingTargets,
): { imageLoss: tf.Scalar | null; textLoss: tf.Scalar | null; loss: tf.Scalar } {
  const hasImage = !!(targets.imageTargets && targets.imageMask);
  const hasText = !!(targets.textTargets && targets.textMask);
  check(hasImage || hasText, () => 'maskedDataModelingLoss needs imageTargets + imageMask and/or textTargets + textMask');
  check(
    !hasImage || logits.imageLogits,
    () => 'maskedDataModelingLoss: image targets given but there are no image logits (no image in the batch)',
  );
  check(
    !hasText || logits.textLogits,
    () => 'maskedDataModelingLoss: text targets given but there are no text logits (no text in the batch)',
  );
  const imageLoss = hasImage ? maskedTokenCrossEntropy(logits.imageLogits!, targets.imageTargets!, targets.imageMask!) : null;
  const textLoss = hasText ? maskedTokenCrossEntropy(logits.textLogits!, targets.textTargets!, targets.textMask!) : null;
  const loss = imageLoss && textLoss ? (tf.add(imageLoss, textLoss) as tf.Scalar) : (imageLoss ?? textLoss)!.clone();
  return { imageLoss, textLoss, loss };
}
