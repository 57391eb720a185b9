import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { BEiT3Config, ResolvedBEiT3Config, resolveBeit3Config } from './config.js';
import { checkTokenIds, Embedding } from '../../layers/embedding.js';
import { Encoder } from './encoder.js';
import { VisionEmbedding } from './visionEmbedding.js';

/** Inputs of {@link BEiT3.forward}: an image, a text, or both. */
export interface BEiT3Inputs {
  /** NHWC `[B, imgSize, imgSize, inChans]`. */
  image?: tf.Tensor;
  /** int32 `[B, Lt]` (a float tensor of integers is cast). */
  textIds?: tf.Tensor;
  /** `[B, Lt]` float 0/1 or bool, 1 = padding. */
  textPaddingMask?: tf.Tensor;
  /** `[B, numPatches]` float 0/1 or bool, 1 = masked patch (replaced by `mask_token`). */
  visionMaskedPosition?: tf.Tensor;
  /** Additive `[T, T]` float mask over all tokens (`-inf` = blocked). */
  attnMask?: tf.Tensor;
}

/** What {@link BEiT3.forward} returns. */
export interface BEiT3Output {
  /** `[B, T, D]` (`[B, T, vocabSize]` with an output layer), T = (1 + numPatches if image) + (Lt if text). */
  encoderOut: tf.Tensor3D;
  /** -1 image only, 0 text only, `1 + numPatches` joint. */
  multiwaySplitPosition: number;
  /** `[B, T]` float 0/1, 1 = padding (the image tokens are never padding). */
  encoderPaddingMask: tf.Tensor2D;
}

/**
 * BEiT-3 (Wang et al. 2022, "Image as a Foreign Language", sec. 2.1): a Multiway Transformer whose layers
 * share self-attention over all tokens while every projection, norm and FFN has a vision expert (`.A`) and a
 * language expert (`.B`); images are patch tokens with a class token, texts are token embeddings.
 * torchscale's `BEiT3`; state-dict keys `text_embed.weight`, `vision_embed.*`, `encoder.*` (unilm checkpoints
 * hold them under `beit3.`: load with `loadTimmWeights(model, sd, { prefix: 'beit3.' })`).
 */
export class BEiT3 extends Module {
  readonly textEmbed: Embedding;
  readonly visionEmbed: VisionEmbedding;
  readonly encoder: Encoder;
  declare config: ResolvedBEiT3Config & Record<string, unknown>;
  constructor(config: BEiT3Config = {}) {
    super();
    const c = resolveBeit3Config(config);
    check(c.multiway, () => 'beit3: BEiT-3 is a Multiway Transformer (torchscale asserts multiway); got multiway: false');
    this.config = c as ResolvedBEiT3Config & Record<string, unknown>;
    const d = c.encoderEmbedDim;
    this.textEmbed = this.addModule('text_embed', new Embedding(c.vocabSize, d, d ** -0.5));
    this.visionEmbed = this.addModule('vision_embed', new VisionEmbedding(c.imgSize, c.patchSize, c.inChans, d));
    this.encoder = this.addModule('encoder', new Encoder(c, this.visionEmbed.numPositionEmbeddings()));
  }

  /** Number of image patches (`(imgSize / patchSize)^2`). */
  get numPatches(): number {
    return this.visionEmbed.numPatches;
  }

  forward(inputs: BEiT3Inputs, opts: ForwardOptions = {}): BEiT3Output {
    check(
      inputs && typeof inputs === 'object',
      () => 'beit3: forward expects { image?, textIds?, textPaddingMask?, visionMaskedPosition?, attnMask? }',
    );
    const { image, textIds, textPaddingMask, visionMaskedPosition, attnMask } = inputs;
    check(image || textIds, () => 'beit3: forward needs an image, textIds, or both');
    check(!visionMaskedPosition || image, () => 'beit3: visionMaskedPosition was given without an image');
    check(!textPaddingMask || textIds, () => 'beit3: textPaddingMask was given without textIds');
    const c = this.config;
    let b = image ? image.shape[0] : textIds!.shape[0];
    if (textIds) {
      check(textIds.rank === 2, () => `beit3: textIds must be [B, Lt], got shape [${textIds.shape.join(', ')}]`);
      check(
        !image || textIds.shape[0] === image.shape[0],
        () => `beit3: image batch ${image!.shape[0]} and textIds batch ${textIds.shape[0]} differ`,
      );
      const lt = textIds.shape[1] as number;
      check(
        lt + 2 <= c.maxSourcePositions,
        () => `beit3: text length ${lt} needs ${lt + 2} position rows (offset 2), more than maxSourcePositions ${c.maxSourcePositions}`,
      );
      checkTokenIds(textIds, c.vocabSize, 'beit3 textIds');
      if (textPaddingMask) {
        check(
          textPaddingMask.rank === 2 && textPaddingMask.shape[0] === b && textPaddingMask.shape[1] === lt,
          () => `beit3: textPaddingMask must be [B, Lt] = [${b}, ${lt}], got [${textPaddingMask.shape.join(', ')}]`,
        );
      }
    }
    b = b as number;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const parts: tf.Tensor[] = [];
      const pads: tf.Tensor[] = [];
      let split = -1;
      if (image) {
        const v = this.visionEmbed.forward(image, { maskedPosition: visionMaskedPosition ?? null });
        parts.push(v);
        pads.push(tf.zeros([b, v.shape[1]]));
      }
      if (textIds) {
        const t = this.textEmbed.forward(textIds);
        split = image ? (parts[0].shape[1] as number) : 0;
        parts.push(t);
        pads.push(textPaddingMask ? textPaddingMask.toFloat() : tf.zeros([b, textIds.shape[1] as number]));
      }
      const tokens = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
      const paddingMask = (pads.length === 1 ? pads[0] : tf.concat(pads, 1)) as tf.Tensor2D;
      const total = tokens.shape[1] as number;
      if (attnMask) {
        check(
          attnMask.rank === 2 && attnMask.shape[0] === total && attnMask.shape[1] === total,
          () => `beit3: attnMask must be [T, T] = [${total}, ${total}], got [${attnMask.shape.join(', ')}]`,
        );
      }
      const mask = attnMask ? attnMask.toFloat() : null;
      const encoderOut = this.encoder.forward({ tokens, paddingMask, split, attnMask: mask, training });
      return { encoderOut, multiwaySplitPosition: split, encoderPaddingMask: paddingMask };
    });
  }

  /** Parameters excluded from weight decay (unilm's `no_weight_decay`). */
  noWeightDecay(): string[] {
    return ['vision_embed.cls_token', 'vision_embed.mask_token', 'encoder.embed_positions.A.weight', 'encoder.embed_positions.B.weight'];
  }
}

/** Build a BEiT-3 model (torchscale `BEiT3(EncoderConfig(...))`). */
export function beit3(config: BEiT3Config = {}): BEiT3 {
  return new BEiT3(config);
}
