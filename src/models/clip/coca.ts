import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { l2Normalize } from '../../layers/attention.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { ClipVisionCfg, ClipTextCfg, MultimodalCfg, openClipConfig, textTowerConfig, visionTowerConfig } from './openClipConfig.js';
import { ClipTextTransformer, OPENAI_INTEGER_ENTRIES } from './textTransformer.js';
import { ClipVisionTransformer } from './visionTransformer.js';
import { CocaGenerateOptions, generateCaptions } from './generate.js';
import { MultimodalDecoder } from './multimodalDecoder.js';

/** Configuration of {@link coca} (open_clip's `CoCa` arguments, camelCase). */
export interface CocaConfig {
  /** Width of the contrastive features (and of the pooler outputs the decoder reads). Default 512. */
  embedDim?: number;
  /** Image tower (`CLIPVisionCfg`); CoCa uses `attentionalPool: true`. */
  visionCfg?: ClipVisionCfg;
  /** Unimodal text tower (`CLIPTextCfg`); CoCa uses `embedCls: true`. */
  textCfg?: ClipTextCfg;
  /** Multimodal decoder (`MultimodalCfg`). */
  multimodalCfg?: MultimodalCfg;
  /** QuickGELU in every tower. Default false. */
  quickGelu?: boolean;
  /** Initial `logit_scale` (log of the contrastive temperature's inverse). Default log(1/0.07). */
  initLogitScale?: number;
  /** Initial `logit_bias` (SigLIP-style); null = none. */
  initLogitBias?: number | null;
  /** `logit_scale` of shape `[1]` instead of a scalar. Default false. */
  nonscalarLogitScale?: boolean;
  /** Padding id of the captions. Default 0. */
  padId?: number;
}

/** What {@link CoCa.forward} returns. */
export interface CocaOutput {
  /** `[B, embedDim]`, L2-normalised. */
  imageFeatures: tf.Tensor2D;
  /** `[B, embedDim]`, L2-normalised. */
  textFeatures: tf.Tensor2D;
  /** `[B, nQueries - 1, embedDim]`: the attentional pooler's other queries (after `ln_post`). */
  imageEmbs: tf.Tensor3D;
  /** `[B, L, width]`: the text tower's token outputs (no `ln_final`). */
  textEmbs: tf.Tensor3D;
  /** `[B, L, vocabSize]`: the multimodal decoder's next-token logits. */
  logits: tf.Tensor3D;
  /** `exp(logit_scale)`. */
  logitScale: tf.Scalar;
  /** `logit_bias` when the model has one. */
  logitBias?: tf.Scalar;
}

/**
 * CoCa, Contrastive Captioners (Yu et al. 2022), as open_clip builds it: a ViT image tower with an attentional
 * pooler (`visual.*`), a causal text tower with an appended CLS token (`text.*`), a multimodal decoder that
 * cross-attends to the image tokens (`text_decoder.*`) and `logit_scale`. Keys as open_clip's checkpoints.
 */
export class CoCa extends Module {
  readonly visual: ClipVisionTransformer;
  readonly text: ClipTextTransformer;
  readonly textDecoder: MultimodalDecoder;
  readonly logitScale: Parameter;
  readonly logitBias: Parameter | null;
  readonly embedDim: number;
  readonly padId: number;
  readonly vocabSize: number;
  /** Longest caption the decoder takes. */
  readonly contextLength: number;

  constructor(cfg: CocaConfig = {}) {
    super();
    this.embedDim = cfg.embedDim ?? 512;
    this.padId = cfg.padId ?? 0;
    const quick = cfg.quickGelu ?? false;
    const mm = cfg.multimodalCfg ?? {};
    const textCfg = cfg.textCfg ?? {};
    this.config = {
      embedDim: this.embedDim,
      visionCfg: cfg.visionCfg ?? {},
      textCfg,
      multimodalCfg: mm,
      quickGelu: quick,
      initLogitScale: cfg.initLogitScale ?? Math.log(1 / 0.07),
      initLogitBias: cfg.initLogitBias ?? null,
      nonscalarLogitScale: cfg.nonscalarLogitScale ?? false,
      padId: this.padId,
    };
    this.text = this.addModule('text', new ClipTextTransformer(textTowerConfig(this.embedDim, textCfg, quick)));
    this.vocabSize = this.text.vocabSize;
    this.visual = this.addModule('visual', new ClipVisionTransformer(visionTowerConfig(this.embedDim, cfg.visionCfg ?? {}, quick)));
    const width = mm.width ?? 512;
    check(
      width === this.embedDim,
      () => `multimodalCfg.width (${width}) must equal embedDim (${this.embedDim}): the decoder cross-attends to the image tokens`,
    );
    check(
      this.text.width === width,
      () => `textCfg.width (${this.text.width}) must equal multimodalCfg.width (${width}): the decoder reads the text tokens`,
    );
    check(this.visual.attnPool !== null, () => 'CoCa needs visionCfg.attentionalPool (the decoder reads the pooler outputs)');
    this.contextLength = mm.contextLength ?? 77;
    this.textDecoder = this.addModule(
      'text_decoder',
      new MultimodalDecoder({
        width,
        layers: mm.layers ?? 12,
        heads: mm.heads ?? 8,
        contextLength: this.contextLength,
        outputDim: this.vocabSize,
        lsInitValue: mm.lsInitValue,
        actLayer: quick ? 'quick_gelu' : 'gelu',
      }),
    );
    const shape = cfg.nonscalarLogitScale ? [1] : [];
    this.logitScale = this.addParameter('logit_scale', tf.fill(shape, this.config.initLogitScale as number));
    this.logitBias = cfg.initLogitBias != null ? this.addParameter('logit_bias', tf.fill(shape, cfg.initLogitBias)) : null;
  }

  /** Image features `[B, embedDim]` (query 0 of the pooler, projected), L2-normalised unless `normalize: false`. */
  encodeImage(images: tf.Tensor, opts: { normalize?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const f = this.visual.forward(images);
      return ((opts.normalize ?? true) ? l2Normalize(f) : f) as tf.Tensor2D;
    });
  }

  /** Text features `[B, embedDim]` (the CLS token, projected), L2-normalised unless `normalize: false`. */
  encodeText(text: tf.Tensor, opts: { normalize?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const f = this.text.forward(text);
      return ((opts.normalize ?? true) ? l2Normalize(f) : f) as tf.Tensor2D;
    });
  }

  /** Both towers and the decoder on images NHWC and captions int32 `[B, L]` (teacher forcing). */
  forward(inputs: { image: tf.Tensor; text: tf.Tensor }, opts: ForwardOptions = {}): CocaOutput {
    check(
      inputs && inputs.image instanceof tf.Tensor && inputs.text instanceof tf.Tensor,
      () => 'CoCa.forward expects { image, text } tensors',
    );
    const { image, text } = inputs;
    check(image.shape[0] === text.shape[0], () => `image batch ${image.shape[0]} and text batch ${text.shape[0]} differ`);
    check(
      text.rank === 2 && (text.shape[1] as number) <= this.contextLength,
      () => `text length ${text.shape[1]} exceeds the decoder's contextLength ${this.contextLength}`,
    );
    return tf.tidy(() => {
      const img = this.visual.forwardTokens(image, opts);
      const txt = this.text.forwardTokens(text, opts);
      const logits = this.textDecoder.forward(img.tokens, { textEmbs: txt.tokens, training: opts.training });
      const out: CocaOutput = {
        imageFeatures: l2Normalize(img.pooled) as tf.Tensor2D,
        textFeatures: l2Normalize(txt.pooled) as tf.Tensor2D,
        imageEmbs: img.tokens,
        textEmbs: txt.tokens,
        logits,
        logitScale: tf.exp(this.logitScale.value).reshape([]) as tf.Scalar,
      };
      if (this.logitBias) out.logitBias = this.logitBias.value.reshape([]) as tf.Scalar;
      return out as unknown as tf.TensorContainerObject;
    }) as unknown as CocaOutput;
  }

  /** Next-token logits `[B, L, vocab]` of captions `text` given the pooler outputs `imageEmbs` (one decoder pass). */
  decode(imageEmbs: tf.Tensor, text: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.textDecoder.forward(imageEmbs, { textEmbs: this.text.forwardTokens(text).tokens }));
  }

  /**
   * Captions for images NHWC: int32 `[B, <= seqLen]` starting with the SOT column. 'greedy' decoding by
   * default; 'beam_search', 'top_k' and 'top_p' sampling as open_clip offers them (see {@link CocaGenerateOptions}).
   */
  generate(image: tf.Tensor, opts: CocaGenerateOptions = {}): tf.Tensor2D {
    return generateCaptions(this, image, opts);
  }

  /** Checkpoint keys rebuilt from the config (the causal masks) or not weights (OpenAI's integer entries). */
  derivedBuffers(): RegExp[] {
    return [/^text\.attn_mask$/, /^text_decoder\.attn_mask$/, ...OPENAI_INTEGER_ENTRIES];
  }

  /** Keys excluded from weight decay. */
  noWeightDecay(): string[] {
    return [
      ...this.text.noWeightDecay().map((k) => `text.${k}`),
      ...this.visual.noWeightDecay().map((k) => `visual.${k}`),
      'logit_scale',
      ...(this.logitBias ? ['logit_bias'] : []),
    ];
  }
}

/** Build a CoCa model (open_clip's `CoCa`). */
export function coca(config: CocaConfig = {}): CoCa {
  return new CoCa(config);
}

/**
 * A CoCa of open_clip's published configs (`'coca_ViT-B-32'`, `'coca_ViT-L-14'`), fields of `overrides` replacing
 * the config's (as open_clip's `create_model(name)`).
 */
export function createCoca(name: string, overrides: CocaConfig = {}): CoCa {
  const cfg = openClipConfig(name);
  check(cfg.multimodalCfg !== undefined, () => `'${name}' is not a CoCa config (it has no multimodalCfg)`);
  return new CoCa({ ...cfg, ...overrides });
}
