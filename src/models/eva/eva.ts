import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Identity } from '../../layers/activations.js';
import { globalPool, PoolType } from '../../layers/classifier.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { prependTokens } from '../../layers/posEmbed.js';
import { rotaryEmbedCat, RopeTables, ropeTables, RotaryEmbedCatOptions } from '../../layers/rotaryEmbedding.js';
import { Backbone, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { evaCheckpointFilter } from './checkpointFilter.js';
import { EvaConfig, EvaPool, resolveEvaConfig, ResolvedEvaConfig } from './config.js';
import { EVA_NORM_EPS, EvaBlock } from './evaBlock.js';
import { maybeCheckpoint } from '../checkpoint.js';

const POOLS: EvaPool[] = ['', 'avg', 'avgmax', 'max', 'token'];

/**
 * EVA / EVA-02 vision transformer (timm's `Eva`): patch embedding, class and register tokens, learned
 * absolute position embedding, optional 2-D RoPE on the patch tokens' q and k (EVA-02 sec. 2.1),
 * pre-norm (or post-norm) blocks with fused or separate q/k/v, GELU / SwiGLU / sub-LN MLPs and layer
 * scale, then `norm` (token pooling) or `fc_norm` after average pooling, and the linear `head`.
 * `forwardFeatures` returns tokens `[B, prefix + N, C]`; intermediates are NHWC maps of the patch tokens.
 */
export class Eva extends Backbone {
  readonly patchEmbed: PatchEmbed;
  readonly clsToken: Parameter | null;
  readonly regToken: Parameter | null;
  readonly posEmbed: Parameter | null;
  readonly normPre: LayerNorm | null;
  readonly blocks: ModuleList<EvaBlock>;
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
  /** The rotary tables over all tokens (null without RoPE); a derived buffer. */
  readonly rope: RopeTables | null;
  globalPoolType: EvaPool;
  private readonly cfg: ResolvedEvaConfig;

  constructor(config: EvaConfig = {}) {
    super();
    const cfg = resolveEvaConfig(config);
    const unsupported = config as Record<string, unknown>;
    check(cfg.ropeType === 'cat', () => `ropeType '${cfg.ropeType}' is not supported: only 'cat' (EVA's RotaryEmbeddingCat) is ported`);
    check(
      !unsupported.dynamicImgSize,
      () => 'dynamicImgSize is not supported by eva: the input size is fixed at imgSize (build the model with another imgSize)',
    );
    check(
      !unsupported.patchDropRate,
      () => `patchDropRate ${String(unsupported.patchDropRate)} is not supported by eva (patch dropout is not ported)`,
    );
    check(!unsupported.gatedAttn, () => 'gatedAttn is not supported by eva');
    check(
      unsupported.attnType === undefined || unsupported.attnType === 'eva',
      () => `attnType '${String(unsupported.attnType)}' is not supported by eva: only 'eva'`,
    );
    check(
      POOLS.includes(cfg.globalPool),
      () =>
        `globalPool '${cfg.globalPool}' is not supported: expected 'avg', 'token', 'max', 'avgmax' or '' ` +
        "(attention pooling 'map' is not ported)",
    );
    const { patchSize: patch, embedDim: dim, depth, numHeads: heads } = cfg;
    check(Number.isInteger(patch) && patch > 0, () => `patchSize must be a positive integer, got ${patch}`);
    check(Number.isInteger(dim) && dim > 0, () => `embedDim must be a positive integer, got ${dim}`);
    check(Number.isInteger(depth) && depth > 0, () => `depth must be a positive integer, got ${depth}`);
    check(Number.isInteger(heads) && heads > 0 && dim % heads === 0, () => `numHeads ${heads} does not divide embedDim ${dim}`);
    check(
      Number.isInteger(cfg.numRegTokens) && cfg.numRegTokens >= 0,
      () => `numRegTokens must be a non-negative integer, got ${cfg.numRegTokens}`,
    );
    check(
      cfg.mlpRatio > 0 && Math.floor(dim * cfg.mlpRatio) > 0,
      () => `mlpRatio ${cfg.mlpRatio} gives no MLP hidden units for embedDim ${dim}`,
    );
    check(
      cfg.imgSize.every((s) => Number.isInteger(s) && s >= patch && s % patch === 0),
      () => `image size ${cfg.imgSize.join('x')} is not a positive multiple of patchSize ${patch}`,
    );
    check(
      !cfg.useRotPosEmb || (dim / heads) % 4 === 0,
      () => `RoPE needs a head dimension divisible by 4, got embedDim ${dim} / numHeads ${heads} = ${dim / heads}`,
    );
    check(
      cfg.refFeatShape === null || cfg.refFeatShape.every((s) => Number.isFinite(s) && s > 0),
      () => `refFeatShape must be positive, got [${cfg.refFeatShape!.join(', ')}]`,
    );

    this.cfg = cfg;
    this.config = { ...cfg } as unknown as Record<string, unknown>;
    this.family = 'eva';
    this.imgSize = cfg.imgSize;
    this.patchSize = patch;
    this.embedDim = dim;
    this.inChans = cfg.inChans;
    this.numClasses = cfg.featuresOnly ? 0 : cfg.numClasses;
    this.globalPoolType = cfg.globalPool;
    this.gridSize = [cfg.imgSize[0] / patch, cfg.imgSize[1] / patch];
    this.numPrefixTokens = (cfg.classToken ? 1 : 0) + cfg.numRegTokens;
    const useFcNorm = cfg.useFcNorm ?? cfg.globalPool === 'avg';
    const usePostNorm = cfg.usePostTransformerNorm ?? !useFcNorm;

    this.clsToken = cfg.classToken ? this.addParameter('cls_token', truncNormal([1, 1, dim], 0.02)) : null;
    this.regToken = cfg.numRegTokens ? this.addParameter('reg_token', truncNormal([1, cfg.numRegTokens, dim], 0.02)) : null;
    const numPatches = this.gridSize[0] * this.gridSize[1];
    const posLen = cfg.noEmbedClass ? numPatches : numPatches + this.numPrefixTokens;
    this.posEmbed = cfg.useAbsPosEmb ? this.addParameter('pos_embed', truncNormal([1, posLen, dim], 0.02)) : null;
    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed({ patchSize: patch, inChans: this.inChans, embedDim: dim, bias: !cfg.usePreTransformerNorm }),
    );
    this.rope = cfg.useRotPosEmb ? ropeTables(this.ropeOptions(), this.numPrefixTokens) : null;
    if (this.rope) {
      this.addBuffer('rope_cos', this.rope.cos);
      this.addBuffer('rope_sin_signed', this.rope.sinSigned);
      this.addBuffer('rope_swap', this.rope.swap);
    }
    this.normPre = cfg.usePreTransformerNorm ? this.addModule('norm_pre', new LayerNorm(dim, EVA_NORM_EPS)) : null;
    const dpr = dropPathRates(cfg.dropPathRate, [depth])[0];
    this.blocks = this.addModule('blocks', new ModuleList<EvaBlock>());
    for (let i = 0; i < depth; i++) {
      const blk = new EvaBlock({
        dim,
        numHeads: heads,
        qkvBias: cfg.qkvBias,
        qkvFused: cfg.qkvFused,
        mlpRatio: cfg.mlpRatio,
        swigluMlp: cfg.swigluMlp,
        scaleMlp: cfg.scaleMlp,
        scaleAttnInner: cfg.scaleAttnInner,
        projDrop: cfg.projDropRate,
        attnDrop: cfg.attnDropRate,
        dropPath: dpr[i],
        initValues: cfg.initValues,
        postNorm: cfg.usePostNorm,
      });
      // timm's fix_init_weight: output projections scaled by 1 / sqrt(2 * layer)
      tf.tidy(() => {
        for (const w of [blk.attn.proj.weight, blk.mlp.fc2.weight]) w.variable.assign(tf.div(w.variable, Math.sqrt(2 * (i + 1))));
      });
      this.blocks.push(blk);
    }
    this.norm = usePostNorm ? this.addModule('norm', new LayerNorm(dim, EVA_NORM_EPS)) : null;
    this.fcNorm = useFcNorm ? this.addModule('fc_norm', new LayerNorm(dim, EVA_NORM_EPS)) : null;
    this.numFeatures = dim;
    this.head = this.addModule('head', this.makeHead(this.numClasses));
    this.featureInfo = this.blocks.items.map((_, i) => ({ numChs: dim, reduction: patch, module: `blocks.${i}` }));
    this.initFeatures(cfg);
    this.config.outIndices = [...this.outIndices];
  }

  /** The settings of this model's rotary table (timm's `RotaryEmbeddingCat(head_dim, in_pixels=False, ...)`). */
  ropeOptions(): RotaryEmbedCatOptions {
    const c = this.cfg;
    return {
      featShape: this.gridSize,
      dim: c.embedDim / c.numHeads,
      refFeatShape: c.refFeatShape,
      temperature: c.ropeTemperature,
      gridOffset: c.ropeGridOffset,
      gridIndexing: c.ropeGridIndexing,
    };
  }

  /** timm's `rope.get_embed()`: the `[H*W, 2 * headDim]` `[sin | cos]` table (a new tensor), or null without RoPE. */
  ropeEmbed(): tf.Tensor2D | null {
    return this.rope ? rotaryEmbedCat(this.ropeOptions()) : null;
  }

  private makeHead(numClasses: number): Linear | Identity {
    if (numClasses <= 0) return new Identity();
    const head = new Linear(this.embedDim, numClasses);
    const s = this.cfg.headInitScale;
    tf.tidy(() => {
      head.weight.variable.assign(tf.mul(head.weight.variable, s));
      head.bias!.variable.assign(tf.mul(head.bias!.variable, s));
    });
    return head;
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    check(
      h === this.imgSize[0] && w === this.imgSize[1],
      () =>
        `expected ${this.imgSize[0]}x${this.imgSize[1]} input (imgSize), got ${h}x${w}; build the model with imgSize: [${h}, ${w}] ` +
        'and load the weights into it (pos_embed is resampled, the RoPE table rebuilt)',
    );
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
      else if (this.cfg.noEmbedClass) y = prependTokens(tf.add(tokens, this.posEmbed.value), prefix);
      else y = tf.add(prependTokens(tokens, prefix), this.posEmbed.value);
      y = dropout(y, this.cfg.posDropRate, opts.training ?? false);
      return (this.normPre ? this.normPre.forward(y) : y) as tf.Tensor3D;
    });
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y: tf.Tensor = this.embed(x, opts);
      for (const blk of this.blocks.items)
        y = maybeCheckpoint(this.gradCheckpointing, opts, blk, y, (u) => blk.forward(u, { ...opts, rope: this.rope }));
      return (this.norm ? this.norm.forward(y) : y) as tf.Tensor3D;
    });
  }

  /** timm's `global_pool_nlc`: the first token, or a reduction over the patch tokens (every prefix token excluded). */
  pool(x: tf.Tensor, poolType: EvaPool = this.globalPoolType): tf.Tensor {
    return tf.tidy(() => {
      if (!poolType) return x.clone();
      check(x.rank === 3, () => `EVA pooling expects tokens [B, L, C], got shape [${x.shape.join(', ')}]`);
      if (poolType === 'token') return globalPool(x, 'token');
      const t = this.numPrefixTokens ? x.slice([0, this.numPrefixTokens, 0], [-1, -1, -1]) : x;
      return globalPool(t, poolType as PoolType);
    });
  }

  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      let y = this.pool(x);
      if (this.fcNorm) y = this.fcNorm.forward(y);
      y = dropout(y, this.cfg.dropRate, opts.training ?? false);
      return (opts.preLogits ? y : this.head.forward(y)) as tf.Tensor2D;
    });
  }

  protected intermediateSteps(x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const b = x.shape[0];
    const [gh, gw] = this.gridSize;
    return {
      numLevels: this.blocks.length,
      stem: (t) => this.embed(t, opts),
      level: (i, y) =>
        maybeCheckpoint(this.gradCheckpointing, opts, this.blocks.items[i], y, (u) =>
          this.blocks.items[i].forward(u, { ...opts, rope: this.rope }),
        ),
      output: (_i, y) =>
        tf.tidy(() => {
          const t = opts.norm && this.norm ? this.norm.forward(y) : y;
          return t.slice([0, this.numPrefixTokens, 0], [-1, -1, -1]).reshape([b, gh, gw, this.embedDim]) as tf.Tensor4D;
        }),
      final: (y) => (this.norm ? this.norm.forward(y) : y.clone()),
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    if (globalPool !== undefined) {
      check(
        POOLS.includes(globalPool as EvaPool),
        () => `globalPool '${globalPool}' is not supported: expected 'avg', 'token', 'max', 'avgmax' or ''`,
      );
      this.globalPoolType = globalPool as EvaPool;
    }
    this.numClasses = numClasses;
    this.head = this.replaceModule('head', this.makeHead(numClasses));
  }

  /** timm's EVA `group_matcher`: embeddings, then one group per block; the final norm joins the last. */
  groupMatcher(): GroupMatcher {
    return {
      stem: '^cls_token|pos_embed|patch_embed',
      blocks: [
        ['^blocks\\.(\\d+)', null],
        ['^norm', [MATCH_PREV_GROUP]],
      ],
    };
  }

  /** timm: `pos_embed`, `cls_token`. */
  override noWeightDecay(): string[] {
    return ['pos_embed', 'cls_token'];
  }

  /** The RoPE table (`rope.pos_embed`, BAAI's `rope.freqs_cos` / `freqs_sin`) and the zero `attn.k_bias`. */
  override derivedBuffers(): RegExp[] {
    return [/(^|\.)rope\.(?!freqs$)/, /(^|\.)attn\.k_bias$/];
  }

  /** timm's EVA `checkpoint_filter_fn` (see {@link evaCheckpointFilter}). */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    return evaCheckpointFilter(sd, {
      patchSize: [this.patchSize, this.patchSize],
      gridSize: this.gridSize,
      posEmbedLength: this.posEmbed ? (this.posEmbed.variable.shape[1] as number) : null,
      posEmbedPrefix: this.cfg.noEmbedClass ? 0 : this.numPrefixTokens,
    });
  }
}

/** Build an EVA / EVA-02 / EVA-CLIP vision transformer (timm's `Eva`). */
export function eva(config: EvaConfig = {}): Eva {
  return new Eva(config);
}
