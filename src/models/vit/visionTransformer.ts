import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { globalPool, PoolType } from '../../layers/classifier.js';
import { Identity } from '../../layers/activations.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { normal, truncNormal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { prependTokens, resampleAbsPosEmbed, resamplePatchEmbed } from '../../layers/posEmbed.js';
import { TransformerBlock } from '../../layers/transformerBlock.js';
import { Backbone, BackboneCommonConfig, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { resolveConfig } from '../resolveConfig.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Head pooling of {@link VisionTransformer} (timm's `global_pool`; 'map' / 'prr' attention pooling are not ported). */
export type VitPool = '' | 'avg' | 'avgmax' | 'max' | 'token';

/** Configuration of {@link vit} (timm's `VisionTransformer` arguments, camelCase). */
export interface VitConfig extends BackboneCommonConfig {
  /** Input image size (square number or `[H, W]`). Default 224. */
  imgSize?: number | [number, number];
  /** Default 16. */
  patchSize?: number;
  /** Default 'token'. */
  globalPool?: VitPool;
  /** Default 768. */
  embedDim?: number;
  /** Default 12. */
  depth?: number;
  /** Default 12. */
  numHeads?: number;
  mlpRatio?: number;
  /** Default true. */
  qkvBias?: boolean;
  qkNorm?: boolean;
  scaleAttnNorm?: boolean;
  projBias?: boolean;
  /** LayerScale init value (null = no layer scale). */
  initValues?: number | null;
  /** Default true. */
  classToken?: boolean;
  /** 'learn' (default) or 'none'. */
  posEmbed?: 'learn' | 'none';
  /** Position embedding without entries for prefix tokens (DeiT-3 / big_vision). */
  noEmbedClass?: boolean;
  regTokens?: number;
  /** LayerNorm after the embeddings (CLIP); disables the patch-embedding bias. */
  preNorm?: boolean;
  /** Default true. */
  finalNorm?: boolean;
  /** Norm after pooling instead of before; default: true for avg/avgmax/max pooling. */
  fcNorm?: boolean | null;
  poolIncludePrefix?: boolean;
  /** Accept any input size divisible by the patch size, resampling the position embedding per input. */
  dynamicImgSize?: boolean;
  posDropRate?: number;
  projDropRate?: number;
  attnDropRate?: number;
  /** LayerNorm epsilon everywhere (timm: 1e-6). */
  normEps?: number;
}

/** The defaults of {@link VitConfig} (timm's `VisionTransformer` defaults); `outIndices` defaults to every level. */
export const VIT_DEFAULTS: Required<Omit<VitConfig, 'outIndices'>> = {
  imgSize: 224,
  patchSize: 16,
  globalPool: 'token',
  embedDim: 768,
  depth: 12,
  numHeads: 12,
  mlpRatio: 4,
  qkvBias: true,
  qkNorm: false,
  scaleAttnNorm: false,
  projBias: true,
  initValues: null,
  classToken: true,
  posEmbed: 'learn',
  noEmbedClass: false,
  regTokens: 0,
  preNorm: false,
  finalNorm: true,
  fcNorm: null,
  poolIncludePrefix: false,
  dynamicImgSize: false,
  posDropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  normEps: 1e-6,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  dropRate: 0,
  dropPathRate: 0,
};

/**
 * Vision Transformer (Dosovitskiy et al. 2021) with timm's layout: patch embedding, class / register
 * tokens, learned absolute position embedding, pre-norm transformer blocks, final norm (or `fc_norm`
 * after average pooling) and a linear head `head`. `forwardFeatures` returns tokens `[B, prefix + N, C]`;
 * intermediates are NHWC maps with the prefix tokens removed.
 */
export class VisionTransformer extends Backbone {
  readonly patchEmbed: PatchEmbed;
  readonly clsToken: Parameter | null;
  readonly regToken: Parameter | null;
  readonly posEmbed: Parameter | null;
  readonly normPre: LayerNorm | null;
  readonly blocks: ModuleList<TransformerBlock>;
  readonly norm: LayerNorm | null;
  readonly fcNorm: LayerNorm | null;
  head: Linear | Identity;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly imgSize: [number, number];
  readonly patchSize: number;
  readonly gridSize: [number, number];
  readonly embedDim: number;
  readonly numPrefixTokens: number;
  readonly noEmbedClass: boolean;
  readonly dynamicImgSize: boolean;
  globalPoolType: VitPool;

  constructor(config: VitConfig = {}) {
    super();
    const cfg: VitConfig = resolveConfig(VIT_DEFAULTS, config);
    this.config = cfg as Record<string, unknown>;
    this.family = 'vit';
    const img = cfg.imgSize ?? 224;
    this.imgSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
    const patch = cfg.patchSize ?? 16;
    this.patchSize = patch;
    const dim = cfg.embedDim ?? 768;
    this.embedDim = dim;
    const depth = cfg.depth ?? 12;
    const heads = cfg.numHeads ?? 12;
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.globalPoolType = (cfg.globalPool ?? 'token') as VitPool;
    const classToken = cfg.classToken ?? true;
    const regTokens = cfg.regTokens ?? 0;
    this.noEmbedClass = cfg.noEmbedClass ?? false;
    this.dynamicImgSize = cfg.dynamicImgSize ?? false;
    const eps = cfg.normEps ?? 1e-6;

    check(
      ['', 'avg', 'avgmax', 'max', 'token'].includes(this.globalPoolType),
      () =>
        `globalPool '${this.globalPoolType}' is not supported: expected '', 'avg', 'avgmax', 'max' or 'token' (attention pooling 'map'/'prr' is not ported)`,
    );
    check(classToken || this.globalPoolType !== 'token', () => "globalPool 'token' needs classToken: true");
    check(Number.isInteger(patch) && patch > 0, () => `patchSize must be a positive integer, got ${patch}`);
    check(Number.isInteger(depth) && depth > 0, () => `depth must be a positive integer, got ${depth}`);
    check(Number.isInteger(heads) && heads > 0 && dim % heads === 0, () => `numHeads ${heads} does not divide embedDim ${dim}`);
    check(Number.isInteger(regTokens) && regTokens >= 0, () => `regTokens must be a non-negative integer, got ${regTokens}`);
    check(
      this.imgSize.every((s) => Number.isInteger(s) && s >= patch && s % patch === 0),
      () => `image size ${this.imgSize.join('x')} is not a positive multiple of patchSize ${patch}`,
    );
    this.gridSize = [this.imgSize[0] / patch, this.imgSize[1] / patch];
    this.numPrefixTokens = (classToken ? 1 : 0) + regTokens;
    const useFcNorm = cfg.fcNorm ?? ['avg', 'avgmax', 'max'].includes(this.globalPoolType);
    const finalNorm = cfg.finalNorm ?? true;

    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed({ patchSize: patch, inChans: this.inChans, embedDim: dim, bias: !(cfg.preNorm ?? false) }),
    );
    this.clsToken = classToken ? this.addParameter('cls_token', normal([1, 1, dim], 1e-6)) : null;
    this.regToken = regTokens ? this.addParameter('reg_token', normal([1, regTokens, dim], 1e-6)) : null;
    const numPatches = this.gridSize[0] * this.gridSize[1];
    const embedLen = this.noEmbedClass ? numPatches : numPatches + this.numPrefixTokens;
    this.posEmbed = (cfg.posEmbed ?? 'learn') === 'none' ? null : this.addParameter('pos_embed', truncNormal([1, embedLen, dim], 0.02));
    this.normPre = cfg.preNorm ? this.addModule('norm_pre', new LayerNorm(dim, eps)) : null;
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, [depth])[0];
    this.blocks = this.addModule('blocks', new ModuleList<TransformerBlock>());
    for (let i = 0; i < depth; i++) {
      const blk = new TransformerBlock({
        dim,
        numHeads: heads,
        mlpRatio: cfg.mlpRatio ?? 4,
        qkvBias: cfg.qkvBias ?? true,
        qkNorm: cfg.qkNorm ?? false,
        scaleAttnNorm: cfg.scaleAttnNorm ?? false,
        projBias: cfg.projBias ?? true,
        initValues: cfg.initValues ?? null,
        projDrop: cfg.projDropRate ?? 0,
        attnDrop: cfg.attnDropRate ?? 0,
        dropPath: dpr[i],
        normEps: eps,
      });
      this.blocks.push(blk);
    }
    this.norm = finalNorm && !useFcNorm ? this.addModule('norm', new LayerNorm(dim, eps)) : null;
    this.fcNorm = finalNorm && useFcNorm ? this.addModule('fc_norm', new LayerNorm(dim, eps)) : null;
    this.numFeatures = dim;
    this.head = this.addModule('head', this.numClasses > 0 ? new Linear(dim, this.numClasses) : new Identity());
    this.featureInfo = this.blocks.items.map((_, i) => ({ numChs: dim, reduction: patch, module: `blocks.${i}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    if (this.dynamicImgSize) {
      const p = this.patchSize;
      check(h % p === 0 && w % p === 0 && h > 0 && w > 0, () => `input ${h}x${w} is not a multiple of patchSize ${p}`);
    } else {
      check(
        h === this.imgSize[0] && w === this.imgSize[1],
        () =>
          `expected ${this.imgSize[0]}x${this.imgSize[1]} input (imgSize), got ${h}x${w}; use dynamicImgSize: true, or build the model with imgSize: [${h}, ${w}] and load the weights into it (the position embedding is resampled)`,
      );
    }
  }

  /** Patch embedding, prefix tokens and position embedding (timm's `_pos_embed`), then `norm_pre`: `[B, prefix + N, C]`. */
  embed(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const p = this.patchEmbed.forward(x);
      const [b, gh, gw, c] = p.shape;
      const tokens = p.reshape([b, gh * gw, c]);
      const prefix = [this.clsToken, this.regToken].filter((t): t is Parameter => t !== null).map((t) => t.value as tf.Tensor);
      let y: tf.Tensor;
      if (!this.posEmbed) y = prependTokens(tokens, prefix);
      else {
        let pos: tf.Tensor = this.posEmbed.value;
        if (gh !== this.gridSize[0] || gw !== this.gridSize[1]) {
          pos = resampleAbsPosEmbed(pos, [gh, gw], {
            oldSize: this.gridSize,
            numPrefixTokens: this.noEmbedClass ? 0 : this.numPrefixTokens,
          });
        }
        y = this.noEmbedClass ? prependTokens(tf.add(tokens, pos), prefix) : tf.add(prependTokens(tokens, prefix), pos);
      }
      y = dropout(y, (this.config.posDropRate as number | undefined) ?? 0, opts.training ?? false);
      return (this.normPre ? this.normPre.forward(y) : y) as tf.Tensor3D;
    });
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y: tf.Tensor = this.embed(x, opts);
      for (const blk of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, blk, y, (u) => blk.forward(u, opts));
      return (this.norm ? this.norm.forward(y) : y) as tf.Tensor3D;
    });
  }

  /** timm's `pool`: class token, or a reduction over the patch tokens (prefix tokens excluded unless `poolIncludePrefix`). */
  pool(x: tf.Tensor, poolType: VitPool = this.globalPoolType): tf.Tensor {
    return tf.tidy(() => {
      if (!poolType) return x.clone();
      check(x.rank === 3, () => `ViT pooling expects tokens [B, L, C], got shape [${x.shape.join(', ')}]`);
      if (poolType === 'token') return globalPool(x, 'token');
      const skip = this.config.poolIncludePrefix ? 0 : this.numPrefixTokens;
      const t = skip ? x.slice([0, skip, 0], [-1, -1, -1]) : x;
      return globalPool(t, poolType as PoolType);
    });
  }

  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      let y = this.pool(x);
      if (this.fcNorm) y = this.fcNorm.forward(y);
      y = dropout(y, (this.config.dropRate as number | undefined) ?? 0, opts.training ?? false);
      return (opts.preLogits ? y : this.head.forward(y)) as tf.Tensor2D;
    });
  }

  protected intermediateSteps(x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const [b, h, w] = x.shape;
    const [gh, gw] = [h / this.patchSize, w / this.patchSize];
    return {
      numLevels: this.blocks.length,
      stem: (t) => this.embed(t, opts),
      level: (i, y) => maybeCheckpoint(this.gradCheckpointing, opts, this.blocks.items[i], y, (u) => this.blocks.items[i].forward(u, opts)),
      output: (_i, y) => {
        const t = opts.norm && this.norm ? this.norm.forward(y) : y;
        return t.slice([0, this.numPrefixTokens, 0], [-1, -1, -1]).reshape([b, gh, gw, this.embedDim]);
      },
      final: (y) => (this.norm ? this.norm.forward(y) : y.clone()),
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    if (globalPool !== undefined) {
      check(
        ['', 'avg', 'avgmax', 'max', 'token'].includes(globalPool),
        () => `globalPool '${globalPool}' is not supported: expected '', 'avg', 'avgmax', 'max' or 'token'`,
      );
      check(globalPool !== 'token' || this.clsToken !== null, () => "globalPool 'token' needs a class token");
      this.globalPoolType = globalPool as VitPool;
    }
    this.numClasses = numClasses;
    this.head = this.replaceModule('head', numClasses > 0 ? new Linear(this.embedDim, numClasses) : new Identity());
  }

  /**
   * timm's ViT `checkpoint_filter_fn`: a patch-embedding kernel of another patch size is resampled
   * (FlexiViT PI-resize, bicubic with antialiasing), a position embedding of another grid is resampled
   * bicubically with antialiasing (prefix tokens kept, source grid assumed square), a flat (pre-conv)
   * patch kernel is reshaped, and `pre_logits` weights are dropped.
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const created: tf.Tensor[] = [];
    const out: Record<string, tf.Tensor> = {};
    const p = this.patchSize;
    for (let [k, v] of Object.entries(sd)) {
      if (k.includes('pre_logits')) continue;
      if (k === 'patch_embed.proj.weight') {
        if (v.rank < 4) {
          v = v.reshape([this.embedDim, -1, p, p]);
          created.push(v);
        }
        if (v.shape[2] !== p || v.shape[3] !== p) {
          v = resamplePatchEmbed(v, [p, p], { interpolation: 'bicubic', antialias: true });
          created.push(v);
        }
      } else if (k === 'pos_embed' && this.posEmbed && v.rank === 3 && v.shape[1] !== this.posEmbed.variable.shape[1]) {
        const prefix = this.noEmbedClass ? 0 : this.numPrefixTokens;
        const n = (v.shape[1] as number) - prefix;
        const s = Math.floor(Math.sqrt(n));
        check(
          s * s === n,
          () =>
            `checkpoint pos_embed has ${n} grid tokens (after ${prefix} prefix tokens), not a square grid; as timm, the source grid is taken to be square: resample it first with resampleAbsPosEmbed(posEmbed, [${this.gridSize.join(', ')}], { oldSize: [h, w] })`,
        );
        v = resampleAbsPosEmbed(v, this.gridSize, {
          numPrefixTokens: this.noEmbedClass ? 0 : this.numPrefixTokens,
          interpolation: 'bicubic',
          antialias: true,
        });
        created.push(v);
      }
      out[k] = v;
    }
    return { sd: out, created };
  }

  /** timm's ViT `group_matcher`: embeddings, then one group per block; the final norm joins the last. */
  groupMatcher(): GroupMatcher {
    return {
      stem: '^cls_token|pos_embed|patch_embed',
      blocks: [
        ['^blocks\\.(\\d+)', null],
        ['^norm', [MATCH_PREV_GROUP]],
      ],
    };
  }

  /** timm: `pos_embed`, `cls_token`, `dist_token`. */
  override noWeightDecay(): string[] {
    return ['pos_embed', 'cls_token', 'dist_token'];
  }
}

/** Build a Vision Transformer (timm's `VisionTransformer`). */
export function vit(config: VitConfig = {}): VisionTransformer {
  return new VisionTransformer(config);
}
