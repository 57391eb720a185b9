import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { truncNormal } from '../../layers/init.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { DenseClipConfig } from './config.js';
import { ContextDecoder } from './contextDecoder.js';
import { ClipResNetWithAttention } from './resnet.js';
import { pixelTextScoreMap } from './scoreMap.js';
import { isTensor } from './tensorArgs.js';
import { ClipTextContextEncoder } from './textContextEncoder.js';
import { DenseClipVisionTransformer } from './visionTransformer.js';

/** What {@link DenseClip.afterExtractFeat} returns (new tensors: the caller disposes them). */
export interface DenseClipFeatures {
  /** `[B, K, C]`: text embeddings refined by the visual context. */
  textEmbeddings: tf.Tensor3D;
  /** NHWC levels; level `scoreConcatIndex` has the K score channels appended after its own. */
  features: tf.Tensor4D[];
  /** NHWC `[B, H, W, K]` pixel-text cosine similarities (no temperature). */
  scoreMap: tf.Tensor4D;
}

/** {@link DenseClipFeatures} plus the intermediate text values. */
export interface DenseClipDetailedFeatures extends DenseClipFeatures {
  /** `[1, K, C]`: the text encoder's output with the learnable contexts. */
  textEmbeddingsRaw: tf.Tensor3D;
  /** `[B, K, C]`: the context decoder's output. */
  textDiff: tf.Tensor3D;
}

/** What {@link DenseClip.forward} returns. */
export interface DenseClipOutput extends DenseClipFeatures {
  globalFeat: tf.Tensor2D;
  visualEmbeddings: tf.Tensor4D;
}

/** DenseCLIP's resolved switches. */
interface Resolved {
  contextLength: number;
  scoreConcatIndex: number;
  tau: number;
  tokenEmbedDim: number;
  textDim: number;
}

/**
 * DenseCLIP (Rao et al. 2022, "DenseCLIP: Language-Guided Dense Prediction with Context-Aware Prompting"): a
 * CLIP image backbone kept dense, a CLIP text encoder with learnable contexts (`contexts`), a context decoder
 * that refines the class embeddings with the image (`text + gamma * decoder(text, [global, pixels])`), and the
 * pixel-text score map appended to one feature level for the segmentation neck. The neck and decode head are
 * not part of it (see the tasks). State-dict keys `backbone.*`, `text_encoder.*`, `context_decoder.*`,
 * `contexts` `(1, N2, tokenEmbedDim)`, `gamma` `(textDim,)`.
 */
export class DenseClip extends Module {
  readonly backbone: ClipResNetWithAttention | DenseClipVisionTransformer | null;
  readonly textEncoder: ClipTextContextEncoder;
  readonly contextDecoder: ContextDecoder;
  readonly contexts: Parameter;
  readonly gamma: Parameter;
  readonly r: Resolved;
  constructor(readonly cfg: DenseClipConfig) {
    super();
    check(
      cfg && typeof cfg === 'object' && cfg.backbone && cfg.textEncoder && cfg.contextDecoder,
      () => 'denseClip: config needs backbone, textEncoder and contextDecoder',
    );
    check(
      (cfg.contextFeature ?? 'attention') === 'attention',
      () =>
        `denseClip: contextFeature must be 'attention' (the official code fails with 'backbone'), ` +
        `got ${JSON.stringify(cfg.contextFeature)}`,
    );
    this.r = {
      contextLength: cfg.contextLength,
      scoreConcatIndex: cfg.scoreConcatIndex ?? 3,
      tau: cfg.tau ?? 0.07,
      tokenEmbedDim: cfg.tokenEmbedDim ?? 512,
      textDim: cfg.textDim ?? 1024,
    };
    this.config = { ...cfg, ...this.r };
    const { contextLength, scoreConcatIndex, tokenEmbedDim, textDim } = this.r;
    const nCtx = cfg.textEncoder.contextLength - contextLength;
    check(
      Number.isInteger(contextLength) && contextLength > 0 && nCtx > 0,
      () =>
        `denseClip: contextLength ${contextLength} must be a positive integer below ` +
        `textEncoder.contextLength ${cfg.textEncoder.contextLength}`,
    );
    check(
      Number.isInteger(scoreConcatIndex) && scoreConcatIndex >= 0 && scoreConcatIndex < 4,
      () => `denseClip: scoreConcatIndex must be 0..3, got ${scoreConcatIndex}`,
    );
    check(
      tokenEmbedDim === cfg.textEncoder.transformerWidth,
      () => `denseClip: tokenEmbedDim ${tokenEmbedDim} must equal textEncoder.transformerWidth ${cfg.textEncoder.transformerWidth}`,
    );
    check(
      textDim === cfg.textEncoder.embedDim && textDim === cfg.contextDecoder.visualDim,
      () =>
        `denseClip: textDim ${textDim} must equal textEncoder.embedDim ${cfg.textEncoder.embedDim} ` +
        `and contextDecoder.visualDim ${cfg.contextDecoder.visualDim}`,
    );
    const bb = cfg.backbone;
    const { type: _t, ...bbArgs } = bb as { type: string } & Record<string, unknown>;
    if (bb.type === 'CLIPResNetWithAttention') this.backbone = this.addModule('backbone', new ClipResNetWithAttention(bbArgs as never));
    else if (bb.type === 'CLIPVisionTransformer')
      this.backbone = this.addModule('backbone', new DenseClipVisionTransformer(bbArgs as never));
    else {
      check(
        bb.type === 'GivenFeatures',
        () =>
          `denseClip: backbone.type must be 'CLIPResNetWithAttention', 'CLIPVisionTransformer' or 'GivenFeatures', ` +
          `got ${JSON.stringify(bb.type)}`,
      );
      this.backbone = null;
    }
    if (this.backbone) {
      const od = (bbArgs as { outputDim: number }).outputDim;
      check(od === textDim, () => `denseClip: the backbone's outputDim ${od} must equal textDim ${textDim}`);
    }
    const { type: _te, ...te } = cfg.textEncoder;
    const { type: _cd, ...cd } = cfg.contextDecoder;
    this.textEncoder = this.addModule('text_encoder', new ClipTextContextEncoder(te));
    this.contextDecoder = this.addModule('context_decoder', new ContextDecoder(cd));
    this.contexts = this.addParameter('contexts', truncNormal([1, nCtx, tokenEmbedDim], 1));
    this.gamma = this.addParameter('gamma', tf.fill([textDim], 1e-4));
  }

  /**
   * Channels of the backbone's four levels as {@link extractFeat} returns them (before the score map is appended
   * to level `scoreConcatIndex`); null for a 'GivenFeatures' model.
   */
  get featureChannels(): number[] | null {
    return this.backbone ? this.backbone.featureChannels : null;
  }

  /** {@link afterExtractFeat} also returning the raw text embeddings and the context decoder's output. */
  afterExtractFeatDetailed(
    features: tf.Tensor[],
    globalFeat: tf.Tensor,
    visualEmbeddings: tf.Tensor,
    tokenIds: tf.Tensor,
    opts: ForwardOptions = {},
  ): DenseClipDetailedFeatures {
    const { contextLength, scoreConcatIndex, textDim } = this.r;
    check(
      Array.isArray(features) && features.length > scoreConcatIndex && features.every((f) => isTensor(f) && f.rank === 4),
      () => `denseClip: features must be a list of NHWC maps with level ${scoreConcatIndex}`,
    );
    check(
      visualEmbeddings.rank === 4 && visualEmbeddings.shape[3] === textDim,
      () => `denseClip: visualEmbeddings must be NHWC [B, H, W, ${textDim}], got [${visualEmbeddings.shape.join(', ')}]`,
    );
    const [b, h, w] = visualEmbeddings.shape as [number, number, number, number];
    check(
      globalFeat.rank === 2 && globalFeat.shape[0] === b && globalFeat.shape[1] === textDim,
      () => `denseClip: globalFeat must be [${b}, ${textDim}], got [${globalFeat.shape.join(', ')}]`,
    );
    check(
      tokenIds.rank === 2 && tokenIds.shape[1] === contextLength,
      () => `denseClip: tokenIds must be [K, contextLength = ${contextLength}], got [${tokenIds.shape.join(', ')}]`,
    );
    const f = features[scoreConcatIndex] as tf.Tensor4D;
    check(
      f.shape[0] === b && f.shape[1] === h && f.shape[2] === w,
      () => `denseClip: feature level ${scoreConcatIndex} [${f.shape.join(', ')}] must have the score map's size [${b}, ${h}, ${w}]`,
    );
    return tf.tidy(() => {
      const visualContext = tf.concat([globalFeat.reshape([b, 1, textDim]), visualEmbeddings.reshape([b, h * w, textDim])], 1);
      const textEmbeddingsRaw = this.textEncoder.forward(tokenIds, this.contexts.value, opts);
      const text = tf.tile(textEmbeddingsRaw, [b, 1, 1]);
      const textDiff = this.contextDecoder.forward(text, visualContext, opts);
      const textEmbeddings = tf.add(text, tf.mul(this.gamma.value, textDiff)) as tf.Tensor3D;
      const scoreMap = pixelTextScoreMap(visualEmbeddings, textEmbeddings);
      const out = features.map((t, i) => (i === scoreConcatIndex ? tf.concat([t, scoreMap], 3) : t.clone()) as tf.Tensor4D);
      return { textEmbeddings, features: out, scoreMap, textEmbeddingsRaw, textDiff } as unknown as tf.TensorContainer;
    }) as unknown as DenseClipDetailedFeatures;
  }

  /**
   * DenseCLIP's `after_extract_feat`: refine the class embeddings with the visual context, compute the score map
   * and append it to level `scoreConcatIndex`. features NHWC[4], globalFeat `[B, C]`, visualEmbeddings NHWC
   * `[B, H, W, C]`, tokenIds `[K, contextLength]`.
   */
  afterExtractFeat(
    features: tf.Tensor[],
    globalFeat: tf.Tensor,
    visualEmbeddings: tf.Tensor,
    tokenIds: tf.Tensor,
    opts: ForwardOptions = {},
  ): DenseClipFeatures {
    const r = this.afterExtractFeatDetailed(features, globalFeat, visualEmbeddings, tokenIds, opts);
    tf.dispose([r.textEmbeddingsRaw, r.textDiff]);
    return { textEmbeddings: r.textEmbeddings, features: r.features, scoreMap: r.scoreMap };
  }

  /** The backbone's outputs as DenseCLIP reads them: four NHWC levels, the global feature, the pixel embeddings. */
  extractFeat(
    image: tf.Tensor,
    opts: ForwardOptions = {},
  ): { features: tf.Tensor4D[]; globalFeat: tf.Tensor2D; visualEmbeddings: tf.Tensor4D } {
    check(this.backbone, () => "denseClip: a 'GivenFeatures' model has no backbone; call afterExtractFeat with the features");
    const bb = this.backbone!;
    if (bb instanceof ClipResNetWithAttention) return bb.forward(image, opts);
    const r = bb.forward(image, opts);
    check(r.globalEmbedding && r.visualEmbedding, () => 'denseClip: the ViT backbone needs getEmbeddings: true');
    return { features: r.features, globalFeat: r.globalEmbedding!, visualEmbeddings: r.visualEmbedding! };
  }

  /** image NHWC, tokenIds `[K, contextLength]` -> the backbone's outputs and {@link afterExtractFeat}'s. */
  forward(image: tf.Tensor, tokenIds?: tf.Tensor | ForwardOptions, opts: ForwardOptions = {}): DenseClipOutput {
    check(isTensor(tokenIds), () => 'denseClip: forward(image, tokenIds) needs the class token ids [K, contextLength]');
    const ids = tokenIds as tf.Tensor;
    return tf.tidy(() => {
      const x = this.extractFeat(image, opts);
      const r = this.afterExtractFeat(x.features, x.globalFeat, x.visualEmbeddings, ids, opts);
      return { ...r, globalFeat: x.globalFeat, visualEmbeddings: x.visualEmbeddings } as unknown as tf.TensorContainer;
    }) as unknown as DenseClipOutput;
  }
}

/** Build a {@link DenseClip} from DenseCLIP's constructor arguments (camelCase, nested configs with `type`). */
export function denseClip(config: DenseClipConfig): DenseClip {
  return new DenseClip(config);
}
