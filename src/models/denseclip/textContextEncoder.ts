import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { normal } from '../../layers/init.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { checkTokenIds, Embedding, embeddingLookup } from '../../layers/embedding.js';
import { clipCausalMask, DenseClipTransformer } from './clipTransformer.js';
import { tensorArg, TensorOrOptions } from './tensorArgs.js';

/** Config of {@link clipTextContextEncoder} (DenseCLIP's `CLIPTextContextEncoder` arguments). */
export interface ClipTextContextEncoderConfig {
  /** Total sequence length: text tokens + learnable context tokens (rows of `positional_embedding`). */
  contextLength: number;
  vocabSize: number;
  transformerWidth: number;
  transformerHeads: number;
  transformerLayers: number;
  embedDim: number;
}

/**
 * DenseCLIP's `CLIPTextContextEncoder` (Rao et al. 2022, sec. 3.3; CoOp-style learnable prompts): the CLIP text
 * transformer on `[SOT, context_1..context_N2, tokens_1..]` per (image context, class prompt) pair, causal
 * mask over the whole `contextLength`, `ln_final`, then the EOT token (`argmax(ids) + N2`) `@ text_projection`.
 * Keys are CLIP's text keys: `token_embedding`, `positional_embedding`, `transformer.resblocks.*`,
 * `ln_final`, `text_projection` `(width, embedDim)`.
 */
export class ClipTextContextEncoder extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Parameter;
  readonly transformer: DenseClipTransformer;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
  private readonly mask: tf.Tensor2D;
  constructor(readonly cfg: ClipTextContextEncoderConfig) {
    super();
    for (const [k, v] of Object.entries(cfg)) {
      if (k === 'type') continue;
      check(
        Number.isInteger(v) && (v as number) > 0,
        () => `clipTextContextEncoder: ${k} must be a positive integer, got ${JSON.stringify(v)}`,
      );
    }
    this.config = { ...cfg };
    const w = cfg.transformerWidth;
    this.transformer = this.addModule('transformer', new DenseClipTransformer(w, cfg.transformerLayers, cfg.transformerHeads));
    this.tokenEmbedding = this.addModule('token_embedding', new Embedding(cfg.vocabSize, w, 0.02));
    this.positionalEmbedding = this.addParameter('positional_embedding', normal([cfg.contextLength, w], 0.01));
    this.lnFinal = this.addModule('ln_final', new LayerNorm(w, 1e-5));
    this.textProjection = this.addParameter('text_projection', normal([w, cfg.embedDim], w ** -0.5));
    this.mask = this.addBuffer('attn_mask', clipCausalMask(cfg.contextLength));
  }

  /** Like {@link forward}, also returning `ln_final` of every sequence `[B*K, contextLength, width]`. */
  forwardWithTokens(text: tf.Tensor, context: tf.Tensor, opts: ForwardOptions = {}): { embeddings: tf.Tensor3D; tokens: tf.Tensor3D } {
    const { contextLength, transformerWidth: w, embedDim } = this.cfg;
    check(text.rank === 2, () => `clipTextContextEncoder: token ids must be [K, N1], got shape [${text.shape.join(', ')}]`);
    check(
      context.rank === 3 && context.shape[2] === w,
      () => `clipTextContextEncoder: context must be [B, N2, ${w}], got shape [${context.shape.join(', ')}]`,
    );
    const [k, n1] = text.shape as [number, number];
    const [b, n2] = context.shape as [number, number, number];
    check(
      n1 + n2 === contextLength,
      () => `clipTextContextEncoder: ${n1} token ids + ${n2} context vectors must equal contextLength ${contextLength}`,
    );
    checkTokenIds(text, this.cfg.vocabSize, 'clipTextContextEncoder');
    // EOT position: first maximum of each id row (torch.argmax), shifted by the inserted contexts
    const ids = Array.from(text.dataSync());
    const eot: number[] = [];
    for (let j = 0; j < b; j++) {
      for (let i = 0; i < k; i++) {
        const row = ids.slice(i * n1, (i + 1) * n1);
        eot.push((j * k + i) * contextLength + row.indexOf(Math.max(...row)) + n2);
      }
    }
    return tf.tidy(() => {
      const xt = this.tokenEmbedding.forward(text); // [K, N1, w]
      const sot = tf.tile(tf.slice(xt, [0, 0, 0], [k, 1, w]).expandDims(0), [b, 1, 1, 1]);
      const rest = tf.tile(tf.slice(xt, [0, 1, 0], [k, n1 - 1, w]).expandDims(0), [b, 1, 1, 1]);
      const ctx = tf.tile(context.expandDims(1), [1, k, 1, 1]);
      let x: tf.Tensor = tf.concat([sot, ctx, rest], 2).reshape([b * k, contextLength, w]);
      x = tf.add(x, this.positionalEmbedding.value);
      x = this.transformer.forward(x, { ...opts, mask: this.mask });
      const tokens = this.lnFinal.forward(x) as tf.Tensor3D;
      const picked = embeddingLookup(tokens.reshape([b * k * contextLength, w]), tf.tensor1d(eot, 'int32'));
      const embeddings = tf
        .matMul(picked as tf.Tensor2D, this.textProjection.value as tf.Tensor2D)
        .reshape([b, k, embedDim]) as tf.Tensor3D;
      return { embeddings, tokens };
    });
  }

  /** forward(tokenIds `[K, N1]` int32, context `[B, N2, width]`) -> `[B, K, embedDim]`. */
  forward(text: tf.Tensor, context?: TensorOrOptions, opts?: ForwardOptions): tf.Tensor3D {
    const a = tensorArg(context, opts);
    check(a.t, () => 'clipTextContextEncoder: forward(tokenIds, context) needs the context tensor [B, N2, width]');
    const r = this.forwardWithTokens(text, a.t!, a.opts);
    r.tokens.dispose();
    return r.embeddings;
  }
}

/** Build a {@link ClipTextContextEncoder}. */
export function clipTextContextEncoder(config: ClipTextContextEncoderConfig): ClipTextContextEncoder {
  return new ClipTextContextEncoder(config);
}
