import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { normal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { IDENTITY, Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { ClipTextConfig, ClipTextPool } from './config.js';
import { TokenEmbedding } from './tokenEmbedding.js';
import { causalMask, ClipTransformer } from './transformer.js';

/** The integer entries of OpenAI's CLIP archives (`input_resolution`, `context_length`, `vocab_size`), not weights. */
export const OPENAI_INTEGER_ENTRIES: RegExp[] = [/^input_resolution$/, /^context_length$/, /^vocab_size$/];

/** Options of {@link ClipTextTransformer.forwardIntermediates} (open_clip's `forward_intermediates`). */
export interface ClipIntermediatesOptions {
  /** A number = the last n blocks, a list = those blocks (negative from the end); default every block. */
  indices?: number | number[];
  /** Apply the final norm to every intermediate. */
  normalizeIntermediates?: boolean;
  /** Return the intermediates only (stops after the last wanted block). */
  intermediatesOnly?: boolean;
}

/**
 * The CLIP text encoder (Radford et al. 2021, sec. 2.4; open_clip's `TextTransformer`): token + position
 * embeddings, a causal (or bidirectional, optionally padding-masked) transformer, `ln_final`, pooling of the
 * EOT / first / last / EOS token and a projection. With `embedCls` (CoCa, Yu et al. 2022, sec. 3.2) a CLS
 * embedding is appended after the ids, pooled and normalised after pooling. Keys as open_clip's.
 */
export class ClipTextTransformer extends Module {
  readonly tokenEmbedding: TokenEmbedding;
  readonly clsEmb: Parameter | null;
  readonly positionalEmbedding: Parameter;
  readonly transformer: ClipTransformer;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter | Linear | null;
  readonly contextLength: number;
  readonly vocabSize: number;
  readonly width: number;
  readonly heads: number;
  readonly outputDim: number;
  readonly numPos: number;
  readonly poolType: ClipTextPool;
  readonly padId: number;
  readonly eosId: number;
  readonly causal: boolean;
  /** Padding mask in bidirectional mode (`usePadMask && noCausalMask`, as open_clip). */
  readonly usePadMask: boolean;
  readonly correctClsMask: boolean;
  private readonly causalMaskFull: tf.Tensor2D | null;

  constructor(cfg: ClipTextConfig = {}) {
    super();
    this.contextLength = cfg.contextLength ?? 77;
    this.vocabSize = cfg.vocabSize ?? 49408;
    this.width = cfg.width ?? 512;
    this.heads = cfg.heads ?? 8;
    const layers = cfg.layers ?? 12;
    const out = cfg.outputDim === undefined ? 512 : (cfg.outputDim ?? 0);
    this.poolType = cfg.poolType ?? 'argmax';
    this.padId = cfg.padId ?? 0;
    this.eosId = cfg.eosId ?? 2;
    this.causal = !(cfg.noCausalMask ?? false);
    this.usePadMask = (cfg.usePadMask ?? false) && !this.causal;
    this.correctClsMask = cfg.correctClsMask ?? false;
    const projType = cfg.projType ?? 'linear';
    this.config = {
      contextLength: this.contextLength,
      vocabSize: this.vocabSize,
      width: this.width,
      heads: this.heads,
      layers,
      mlpRatio: cfg.mlpRatio ?? 4,
      lsInitValue: cfg.lsInitValue ?? null,
      outputDim: out,
      embedCls: cfg.embedCls ?? false,
      noCausalMask: !this.causal,
      usePadMask: cfg.usePadMask ?? false,
      correctClsMask: this.correctClsMask,
      padId: this.padId,
      eosId: this.eosId,
      poolType: this.poolType,
      projType,
      projBias: cfg.projBias ?? false,
      actLayer: cfg.actLayer ?? 'gelu',
      outputTokens: cfg.outputTokens ?? false,
    };
    check(
      ['argmax', 'first', 'last', 'eos', 'none'].includes(this.poolType),
      () => `poolType '${this.poolType}' is not one of argmax, first, last, eos, none`,
    );
    check(['linear', 'none'].includes(projType), () => `projType '${projType}' is not 'linear' or 'none'`);
    check(
      Number.isInteger(this.contextLength) && this.contextLength > 0,
      () => `contextLength must be a positive integer, got ${this.contextLength}`,
    );
    check(Number.isInteger(this.vocabSize) && this.vocabSize > 0, () => `vocabSize must be a positive integer, got ${this.vocabSize}`);
    this.tokenEmbedding = this.addModule('token_embedding', new TokenEmbedding(this.vocabSize, this.width, 0.02));
    this.numPos = this.contextLength + (cfg.embedCls ? 1 : 0);
    this.clsEmb = cfg.embedCls ? this.addParameter('cls_emb', normal([this.width], 0.01)) : null;
    this.positionalEmbedding = this.addParameter('positional_embedding', normal([this.numPos, this.width], 0.01));
    this.transformer = this.addModule(
      'transformer',
      new ClipTransformer({
        width: this.width,
        layers,
        heads: this.heads,
        mlpRatio: cfg.mlpRatio,
        lsInitValue: cfg.lsInitValue,
        actLayer: cfg.actLayer,
      }),
    );
    this.lnFinal = this.addModule('ln_final', new LayerNorm(this.width, 1e-5));
    this.causalMaskFull = this.causal ? this.addBuffer('attn_mask', causalMask(this.numPos)) : null;
    if (projType === 'none' || !out) {
      this.textProjection = null;
      this.outputDim = this.width;
    } else {
      this.outputDim = out;
      this.textProjection = cfg.projBias
        ? this.addModule('text_projection', new Linear(this.width, out))
        : this.addParameter('text_projection', normal([this.width, out], this.width ** -0.5), IDENTITY);
    }
  }

  private checkText(text: tf.Tensor): void {
    check(
      text.rank === 2 && text.dtype === 'int32',
      () => `text must be int32 token ids [B, L], got ${text.dtype} [${text.shape.join(', ')}]`,
    );
    const l = text.shape[1] as number;
    check(l >= 1 && l <= this.contextLength, () => `text length ${text.shape[1]} is not in 1..contextLength (${this.contextLength})`);
  }

  /**
   * Embeddings `[B, S, width]` (S = L, +1 with the CLS embedding) and the additive attention mask: the causal
   * mask `[S, S]`, plus the padding / CLS mask `[B, S, S]` (open_clip's `_build_additive_mask`).
   */
  embed(text: tf.Tensor): { x: tf.Tensor3D; attnMask: tf.Tensor | null } {
    this.checkText(text);
    const [b, l] = text.shape as [number, number];
    const s = l + (this.clsEmb ? 1 : 0);
    const out = tf.tidy(() => {
      let x: tf.Tensor = this.tokenEmbedding.forward(text);
      if (this.clsEmb) x = tf.concat([x, tf.broadcastTo(this.clsEmb.value.reshape([1, 1, this.width]), [b, 1, this.width])], 1);
      x = tf.add(x, tf.slice(this.positionalEmbedding.value, [0, 0], [s, this.width]));
      let attnMask: tf.Tensor | null = this.causalMaskFull ? tf.slice(this.causalMaskFull, [0, 0], [s, s]) : null;
      if (this.usePadMask || this.clsEmb) {
        const ids = text.dataSync();
        const m = new Float32Array(b * s * s);
        for (let r = 0; r < b; r++) {
          for (let k = 0; k < s; k++) {
            let valid: boolean;
            if (!this.clsEmb) valid = ids[r * l + k] !== this.padId;
            else if (this.correctClsMask) valid = k === l || ids[r * l + k] !== this.padId;
            else valid = k === 0 || ids[r * l + k - 1] !== this.padId;
            if (!valid) for (let q = 0; q < s; q++) m[(r * s + q) * s + k] = -Infinity;
          }
        }
        const pad = tf.tensor3d(m, [b, s, s]);
        attnMask = attnMask ? tf.add(attnMask, pad) : pad;
      }
      return attnMask ? [x, attnMask] : [x];
    });
    return { x: out[0] as tf.Tensor3D, attnMask: out[1] ?? null };
  }

  /** Row index of the pooled token of each sequence (argmax / first / last / eos). */
  private poolIndices(text: tf.Tensor, n: number): number[] {
    const [b, l] = text.shape as [number, number];
    const ids = text.dataSync();
    const idx: number[] = [];
    for (let r = 0; r < b; r++) {
      let j = 0;
      if (this.poolType === 'last') j = n - 1;
      else if (this.poolType === 'argmax') {
        for (let k = 1; k < l; k++) if (ids[r * l + k] > ids[r * l + j]) j = k;
      } else if (this.poolType === 'eos') {
        for (let k = 0; k < l; k++) {
          if (ids[r * l + k] === this.eosId) {
            j = k;
            break;
          }
        }
      }
      idx.push(r * n + j);
    }
    return idx;
  }

  /** Pooling, final norm and projection of the transformer output `x` (open_clip's `forward` tail). */
  private head(x: tf.Tensor3D, text: tf.Tensor): { pooled: tf.Tensor; tokens: tf.Tensor3D } {
    return tf.tidy(() => {
      const [b, n, c] = x.shape;
      let pooled: tf.Tensor;
      let tokens: tf.Tensor3D;
      if (this.clsEmb) {
        pooled = this.lnFinal.forward(tf.slice(x, [0, n - 1, 0], [b, 1, c]).reshape([b, c]));
        tokens = tf.slice(x, [0, 0, 0], [b, n - 1, c]);
      } else {
        tokens = this.lnFinal.forward(x) as tf.Tensor3D;
        pooled = this.poolType === 'none' ? tokens : tf.gather(tokens.reshape([b * n, c]), this.poolIndices(text, n));
      }
      return { pooled: this.project(pooled), tokens };
    });
  }

  /** The text projection (`x @ P`, or the biased `nn.Linear`); identity without one. */
  project(x: tf.Tensor): tf.Tensor {
    if (!this.textProjection) return x.clone();
    if (this.textProjection instanceof Linear) return this.textProjection.forward(x);
    const p = this.textProjection.value;
    return tf.tidy(() => {
      const y = tf.matMul(x.reshape([-1, this.width]), p);
      return y.reshape([...x.shape.slice(0, -1), this.outputDim]);
    });
  }

  /** Token ids `[B, L]` (int32) -> text features `[B, outputDim]` (pooled and projected, not normalised). */
  forward(text: tf.Tensor, opts: { training?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => this.forwardTokens(text, opts).pooled);
  }

  /** Features and the token outputs `[B, L, width]` (`ln_final(x)`, or the pre-norm tokens with `embedCls`). */
  forwardTokens(text: tf.Tensor, opts: { training?: boolean } = {}): { pooled: tf.Tensor2D; tokens: tf.Tensor3D } {
    return tf.tidy(() => {
      const { x, attnMask } = this.embed(text);
      const y = this.transformer.forward(x, { attnMask: attnMask ?? undefined, training: opts.training });
      const { pooled, tokens } = this.head(y, text);
      return { pooled: pooled as tf.Tensor2D, tokens };
    });
  }

  /**
   * Text features `[K, outputDim]` of prompts with learnable context tokens (CoOp, Zhou et al. 2022; DenseCLIP's
   * `CLIPTextContextEncoder`, Rao et al. 2022, sec. 3.3): the embeddings of `context` `[N, width]` (shared by every
   * row) or `[K, N, width]` are inserted after each row's SOT token, so row `k` reads
   * `[SOT, ctx_1..ctx_N, ids_k[1..]]`; the pooled position (EOT for 'argmax') moves by N. `text` int32 `[K, L]`
   * with `L + N <= contextLength`. Gradients flow to `context` (the tower itself may be frozen). Causal towers
   * without a CLS embedding or padding mask (OpenAI CLIP / open_clip's text towers).
   */
  forwardWithContext(text: tf.Tensor, context: tf.Tensor, opts: { training?: boolean } = {}): tf.Tensor2D {
    this.checkText(text);
    check(
      !this.clsEmb && !this.usePadMask && this.poolType !== 'none',
      () => 'forwardWithContext needs a CLIP text tower without embedCls / usePadMask and with a pooled output',
    );
    const [k, l] = text.shape as [number, number];
    const n = context.shape[context.rank - 2];
    check(
      (context.rank === 2 || (context.rank === 3 && context.shape[0] === k)) && context.shape[context.rank - 1] === this.width,
      () => `context must be [N, ${this.width}] or [${k}, N, ${this.width}], got [${context.shape.join(', ')}]`,
    );
    check(
      l + n <= this.contextLength,
      () => `text length ${l} plus ${n} context tokens exceeds the text tower's contextLength ${this.contextLength}`,
    );
    const s = l + n;
    const rows = this.poolIndices(text, l).map((j, r) => {
      const col = j - r * l;
      return r * s + (this.poolType === 'first' || col === 0 ? col : this.poolType === 'last' ? s - 1 : col + n);
    });
    return tf.tidy(() => {
      const e = this.tokenEmbedding.forward(text);
      const ctx = context.rank === 2 ? tf.tile(context.expandDims(0), [k, 1, 1]) : context;
      let x: tf.Tensor = tf.concat([tf.slice(e, [0, 0, 0], [k, 1, this.width]), ctx, tf.slice(e, [0, 1, 0], [k, l - 1, this.width])], 1);
      x = tf.add(x, tf.slice(this.positionalEmbedding.value, [0, 0], [s, this.width]));
      const attnMask = this.causalMaskFull ? tf.slice(this.causalMaskFull, [0, 0], [s, s]) : undefined;
      const y = this.lnFinal.forward(this.transformer.forward(x as tf.Tensor3D, { attnMask, training: opts.training }));
      return this.project(tf.gather(y.reshape([k * s, this.width]), rows)) as tf.Tensor2D;
    });
  }

  /** The block outputs (before `ln_final`, CLS position removed) and, unless `intermediatesOnly`, the features. */
  forwardIntermediates(
    text: tf.Tensor,
    opts: ClipIntermediatesOptions = {},
  ): { textIntermediates: tf.Tensor3D[]; textFeatures?: tf.Tensor2D } {
    const res = tf.tidy(() => {
      const { x, attnMask } = this.embed(text);
      const { last, intermediates } = this.transformer.forwardIntermediates(x, {
        attnMask: attnMask ?? undefined,
        indices: opts.indices,
        stopEarly: opts.intermediatesOnly,
      });
      const [b, n, c] = x.shape;
      const inter = intermediates.map((t) => {
        let y: tf.Tensor3D = opts.normalizeIntermediates ? (this.lnFinal.forward(t) as tf.Tensor3D) : t;
        if (this.clsEmb) y = tf.slice(y, [0, 0, 0], [b, n - 1, c]);
        return y;
      });
      const out: tf.Tensor[] = [...inter];
      if (!opts.intermediatesOnly && last) out.push(this.head(last, text).pooled);
      return out;
    });
    const k = res.length - (opts.intermediatesOnly ? 0 : 1);
    const textIntermediates = res.slice(0, k) as tf.Tensor3D[];
    return opts.intermediatesOnly ? { textIntermediates } : { textIntermediates, textFeatures: res[k] as tf.Tensor2D };
  }

  /** Keys excluded from weight decay (open_clip's `no_weight_decay`). */
  noWeightDecay(): string[] {
    return this.clsEmb ? ['positional_embedding', 'cls_emb'] : ['positional_embedding'];
  }

  /** Checkpoint keys rebuilt from the config, skipped when loading: the causal mask, OpenAI's integer entries. */
  derivedBuffers(): RegExp[] {
    return [/^attn_mask$/, ...OPENAI_INTEGER_ENTRIES];
  }
}

/** Build a CLIP text tower (open_clip's `TextTransformer`). */
export function clipTextTransformer(config: ClipTextConfig = {}): ClipTextTransformer {
  return new ClipTextTransformer(config);
}
