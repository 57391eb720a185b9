import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Conv2d } from '../../layers/conv2d.js';
import { normal } from '../../layers/init.js';
import { ForwardOptions, IDENTITY, Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { mulberry32 } from '../../utils/random.js';
import { AttentionalPooler } from './attentionalPooler.js';
import { ClipVisionConfig } from './config.js';
import { sinCos2dPosEmbed } from './sinCosPosEmbed.js';
import { ClipIntermediatesOptions, OPENAI_INTEGER_ENTRIES } from './textTransformer.js';
import { ClipTransformer } from './transformer.js';

/**
 * The CLIP image encoder (Radford et al. 2021, sec. 2.4; open_clip's `VisionTransformer`): a bias-free patch
 * convolution `conv1`, `[class_embedding, patches] + positional_embedding`, `ln_pre`, the transformer, then
 * class-token / average pooling with `ln_post` (or CoCa's attentional pooler) and the projection `proj`
 * (`x @ P`). Images NHWC; keys as open_clip's, so OpenAI / open_clip image towers load unchanged.
 */
export class ClipVisionTransformer extends Module {
  readonly conv1: Conv2d;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly lnPre: LayerNorm | null;
  readonly transformer: ClipTransformer;
  readonly attnPool: AttentionalPooler | null;
  readonly attnPoolContrastive: AttentionalPooler | null;
  readonly lnPost: LayerNorm;
  readonly proj: Parameter;
  readonly imageSize: [number, number];
  readonly patchSize: number;
  readonly gridSize: [number, number];
  readonly width: number;
  readonly outputDim: number;
  readonly poolType: 'tok' | 'avg' | 'none';
  readonly attnPoolType: '' | 'parallel' | 'cascade';
  readonly finalLnAfterPool: boolean;
  readonly patchDropout: number;
  private dropoutCalls = 0;

  constructor(cfg: ClipVisionConfig = {}) {
    super();
    const img = cfg.imageSize ?? 224;
    this.imageSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
    this.patchSize = cfg.patchSize ?? 16;
    this.width = cfg.width ?? 768;
    const layers = cfg.layers ?? 12;
    const heads = cfg.heads ?? 12;
    this.outputDim = cfg.outputDim ?? 512;
    this.poolType = cfg.poolType ?? 'tok';
    this.finalLnAfterPool = cfg.finalLnAfterPool ?? false;
    this.patchDropout = cfg.patchDropout ?? 0;
    const ap = cfg.attentionalPool ?? false;
    const posType = cfg.posEmbedType ?? 'learnable';
    this.config = {
      imageSize: cfg.imageSize ?? 224,
      patchSize: this.patchSize,
      width: this.width,
      layers,
      heads,
      mlpRatio: cfg.mlpRatio ?? 4,
      lsInitValue: cfg.lsInitValue ?? null,
      attentionalPool: ap,
      attnPoolerQueries: cfg.attnPoolerQueries ?? 256,
      attnPoolerHeads: cfg.attnPoolerHeads ?? 8,
      outputDim: this.outputDim,
      patchDropout: this.patchDropout,
      noLnPre: cfg.noLnPre ?? false,
      posEmbedType: posType,
      poolType: this.poolType,
      finalLnAfterPool: this.finalLnAfterPool,
      actLayer: cfg.actLayer ?? 'gelu',
      outputTokens: cfg.outputTokens ?? false,
    };
    const p = this.patchSize;
    check(Number.isInteger(p) && p > 0, () => `patchSize must be a positive integer, got ${p}`);
    check(
      this.imageSize.every((s) => Number.isInteger(s) && s >= p),
      () => `imageSize ${this.imageSize.join('x')} is smaller than patchSize ${p}`,
    );
    check(['tok', 'avg', 'none'].includes(this.poolType), () => `poolType '${this.poolType}' is not one of tok, avg, none`);
    check(['learnable', 'sin_cos_2d'].includes(posType), () => `posEmbedType '${posType}' is not 'learnable' or 'sin_cos_2d'`);
    check(
      ap === true || ap === false || ap === 'parallel' || ap === 'cascade',
      () => `attentionalPool must be a boolean, 'parallel' or 'cascade', got ${String(ap)}`,
    );
    check(this.patchDropout >= 0 && this.patchDropout < 1, () => `patchDropout must be in [0, 1), got ${this.patchDropout}`);
    this.gridSize = [Math.floor(this.imageSize[0] / p), Math.floor(this.imageSize[1] / p)];
    const n = this.gridSize[0] * this.gridSize[1];
    const scale = this.width ** -0.5;
    this.conv1 = this.addModule('conv1', new Conv2d(3, this.width, p, { stride: p, bias: false }));
    this.classEmbedding = this.addParameter('class_embedding', normal([this.width], scale));
    if (posType === 'sin_cos_2d') {
      check(this.gridSize[0] === this.gridSize[1], () => `posEmbedType 'sin_cos_2d' needs a square grid, got ${this.gridSize.join('x')}`);
      this.positionalEmbedding = this.addParameter('positional_embedding', sinCos2dPosEmbed(this.width, this.gridSize[0]), IDENTITY, false);
    } else {
      this.positionalEmbedding = this.addParameter('positional_embedding', normal([n + 1, this.width], scale));
    }
    this.lnPre = cfg.noLnPre ? null : this.addModule('ln_pre', new LayerNorm(this.width, 1e-5));
    this.transformer = this.addModule(
      'transformer',
      new ClipTransformer({
        width: this.width,
        layers,
        heads,
        mlpRatio: cfg.mlpRatio,
        lsInitValue: cfg.lsInitValue,
        actLayer: cfg.actLayer,
      }),
    );
    const queries = cfg.attnPoolerQueries ?? 256;
    const poolHeads = cfg.attnPoolerHeads ?? 8;
    this.attnPoolType = typeof ap === 'string' ? ap : '';
    check(
      typeof ap !== 'string' || this.width === this.outputDim,
      () =>
        `attentionalPool '${ap}' normalises the ${this.width}-wide tokens with ln_post (${this.outputDim}): it needs width === outputDim`,
    );
    if (ap) {
      this.attnPool = this.addModule('attn_pool', new AttentionalPooler(this.outputDim, this.width, poolHeads, queries));
      this.attnPoolContrastive =
        typeof ap === 'string'
          ? this.addModule('attn_pool_contrastive', new AttentionalPooler(this.outputDim, this.width, poolHeads, 1))
          : null;
      if (typeof ap === 'string') this.poolType = 'none';
    } else {
      this.attnPool = null;
      this.attnPoolContrastive = null;
    }
    const poolDim = ap ? this.outputDim : this.width;
    this.lnPost = this.addModule('ln_post', new LayerNorm(poolDim, 1e-5));
    this.proj = this.addParameter('proj', normal([poolDim, this.outputDim], scale));
  }

  private checkImages(x: tf.Tensor): void {
    check(x.rank === 4 && x.shape[3] === 3, () => `images must be NHWC [B, H, W, 3], got shape [${x.shape.join(', ')}]`);
    const [, h, w] = x.shape;
    check(
      h === this.imageSize[0] && w === this.imageSize[1],
      () => `expected ${this.imageSize[0]}x${this.imageSize[1]} images (imageSize), got ${h}x${w}`,
    );
  }

  /** Patch embedding, class token, position embedding, patch dropout (training) and `ln_pre`: `[B, 1 + N, width]`. */
  embed(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkImages(x);
    return tf.tidy(() => {
      const p = this.conv1.forward(x);
      const [b, gh, gw, c] = p.shape;
      const cls = tf.broadcastTo(this.classEmbedding.value.reshape([1, 1, c]), [b, 1, c]);
      let y: tf.Tensor = tf.add(tf.concat([cls, p.reshape([b, gh * gw, c])], 1), this.positionalEmbedding.value);
      if (opts.training && this.patchDropout > 0) y = this.dropPatches(y as tf.Tensor3D);
      return (this.lnPre ? this.lnPre.forward(y) : y) as tf.Tensor3D;
    });
  }

  /** open_clip's `PatchDropout`: keep a random `max(1, floor(N (1 - p)))` patch tokens per image (class token kept). */
  private dropPatches(x: tf.Tensor3D): tf.Tensor3D {
    const [b, t, c] = x.shape;
    const n = t - 1;
    const keep = Math.max(1, Math.floor(n * (1 - this.patchDropout)));
    const rand = mulberry32(0x5eed + this.dropoutCalls++);
    const rows: number[] = [];
    for (let r = 0; r < b; r++) {
      const order = Array.from({ length: n }, (_, i) => [rand(), i + 1])
        .sort((u, v) => u[0] - v[0])
        .slice(0, keep)
        .map((u) => u[1]);
      rows.push(r * t, ...order.map((i) => r * t + i));
    }
    return tf.gather(x.reshape([b * t, c]), rows).reshape([b, keep + 1, c]) as tf.Tensor3D;
  }

  private globalPool(x: tf.Tensor3D): { pooled: tf.Tensor; tokens: tf.Tensor3D } {
    const [b, t, c] = x.shape;
    if (this.poolType === 'none') return { pooled: x, tokens: x };
    const tokens = tf.slice(x, [0, 1, 0], [b, t - 1, c]);
    const pooled = this.poolType === 'avg' ? tf.mean(tokens, 1) : tf.slice(x, [0, 0, 0], [b, 1, c]).reshape([b, c]);
    return { pooled, tokens };
  }

  /** Pooling as open_clip's `_pool`: attentional pooler(s) or class-token / average pooling with `ln_post`. */
  private pool(x: tf.Tensor3D, opts: ForwardOptions): { pooled: tf.Tensor; tokens: tf.Tensor3D } {
    return tf.tidy(() => {
      if (this.attnPool && this.attnPoolContrastive) {
        const y = this.lnPost.forward(x) as tf.Tensor3D;
        const tokens = this.attnPool.forward(y, opts);
        const src = this.attnPoolType === 'parallel' ? y : tokens;
        const pooled = this.attnPoolContrastive.forward(src, opts);
        return { pooled: pooled.reshape([x.shape[0], this.outputDim]), tokens };
      }
      if (this.attnPool) return this.globalPool(this.lnPost.forward(this.attnPool.forward(x, opts)) as tf.Tensor3D);
      if (this.finalLnAfterPool) {
        const { pooled, tokens } = this.globalPool(x);
        return { pooled: this.lnPost.forward(pooled), tokens };
      }
      return this.globalPool(this.lnPost.forward(x) as tf.Tensor3D);
    });
  }

  private project(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const d = x.shape[x.rank - 1];
      return tf.matMul(x.reshape([-1, d]), this.proj.value).reshape([...x.shape.slice(0, -1), this.outputDim]);
    });
  }

  /** NHWC images -> image features `[B, outputDim]` (pooled and projected, not normalised). */
  forward(images: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.forwardTokens(images, opts).pooled);
  }

  /** Features and tokens: the patch tokens `[B, N, width]` (after `ln_post` unless `finalLnAfterPool`), or the pooler's other queries. */
  forwardTokens(images: tf.Tensor, opts: ForwardOptions = {}): { pooled: tf.Tensor2D; tokens: tf.Tensor3D } {
    return tf.tidy(() => {
      const x = this.transformer.forward(this.embed(images, opts), opts);
      const { pooled, tokens } = this.pool(x, opts);
      return { pooled: this.project(pooled) as tf.Tensor2D, tokens };
    });
  }

  /**
   * Every token's feature `[B, 1 + N, D]` (class token first): `ln_post` on all tokens, then the projection
   * (`D = outputDim`; `projected: false` stops before it, `D = width`), as MILAN's `encode_image_featuremap`
   * and EVA's CLIP teacher take them. With `importance`, also the last block's class-token attention over the
   * patches, averaged over heads, `[B, N]` (MILAN sec. 3.2). Plain CLIP towers only (no attentional pooler).
   */
  forwardFeatureMap(
    images: tf.Tensor,
    opts: { projected?: boolean; importance?: boolean } = {},
  ): { features: tf.Tensor3D; importance?: tf.Tensor2D } {
    check(this.attnPool === null, () => 'forwardFeatureMap needs a CLIP image tower without attentional pooler');
    const res = tf.tidy(() => {
      let y: tf.Tensor3D = this.embed(images);
      const blocks = this.transformer.resblocks;
      for (let i = 0; i < blocks.length - 1; i++) y = blocks[i].forward(y);
      const out: tf.Tensor[] = [];
      const last = blocks[blocks.length - 1];
      if (opts.importance) {
        const [b, t, c] = y.shape;
        const attn = last.attn;
        const h = attn.numHeads;
        const hd = c / h;
        const x = last.ln1.forward(y).reshape([b * t, c]);
        const w = attn.inProjWeight!.value as tf.Tensor2D; // [C, 3C]: q | k | v columns
        const bias = attn.inProjBias?.value ?? null;
        const part = (i: number) => {
          const p = tf.matMul(x, tf.slice(w, [0, i * c], [c, c]));
          return bias ? tf.add(p, tf.slice(bias, [i * c], [c])) : p;
        };
        const q = part(0).reshape([b, t, h, hd]).slice([0, 0, 0, 0], [b, 1, h, hd]).reshape([b, h, 1, hd]);
        const k = part(1).reshape([b, t, h, hd]).transpose([0, 2, 1, 3]);
        const probs = tf.softmax(tf.matMul(tf.mul(q, hd ** -0.5), k, false, true)); // [B, h, 1, T]
        out.push(tf.mean(probs.reshape([b, h, t]), 1).slice([0, 1], [b, t - 1]));
      }
      y = last.forward(y);
      const z = this.lnPost.forward(y);
      out.unshift((opts.projected ?? true) ? this.project(z) : z);
      return out;
    });
    return opts.importance ? { features: res[0] as tf.Tensor3D, importance: res[1] as tf.Tensor2D } : { features: res[0] as tf.Tensor3D };
  }

  /** Block outputs as NHWC maps (class token removed, `ln_post` only with `normalizeIntermediates`) and the features. */
  forwardIntermediates(
    images: tf.Tensor,
    opts: ClipIntermediatesOptions = {},
  ): { imageIntermediates: tf.Tensor4D[]; imageFeatures?: tf.Tensor2D } {
    check(
      !opts.normalizeIntermediates || this.lnPost.dim === this.width,
      () => `normalizeIntermediates needs ln_post over the width ${this.width}, but it normalises ${this.lnPost.dim} (attentional pooler)`,
    );
    const res = tf.tidy(() => {
      const x = this.embed(images);
      const { last, intermediates } = this.transformer.forwardIntermediates(x, {
        indices: opts.indices,
        stopEarly: opts.intermediatesOnly,
      });
      const [b, t, c] = x.shape;
      const [gh, gw] = this.gridSize;
      const maps = intermediates.map((y) => {
        const z = opts.normalizeIntermediates ? this.lnPost.forward(y) : y;
        return tf.slice(z, [0, 1, 0], [b, t - 1, c]).reshape([b, gh, gw, c]);
      });
      const out: tf.Tensor[] = [...maps];
      if (!opts.intermediatesOnly && last) out.push(this.project(this.pool(last, {}).pooled));
      return out;
    });
    const k = res.length - (opts.intermediatesOnly ? 0 : 1);
    const imageIntermediates = res.slice(0, k) as tf.Tensor4D[];
    return opts.intermediatesOnly ? { imageIntermediates } : { imageIntermediates, imageFeatures: res[k] as tf.Tensor2D };
  }

  /** Keys excluded from weight decay (open_clip's `no_weight_decay`). */
  noWeightDecay(): string[] {
    return ['positional_embedding', 'class_embedding'];
  }

  /** Checkpoint keys that are not weights (OpenAI's integer entries), skipped when loading. */
  derivedBuffers(): RegExp[] {
    return OPENAI_INTEGER_ENTRIES;
  }
}

/** Build a CLIP image tower (open_clip's `VisionTransformer`). */
export function clipVisionTransformer(config: ClipVisionConfig = {}): ClipVisionTransformer {
  return new ClipVisionTransformer(config);
}
