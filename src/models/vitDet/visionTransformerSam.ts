import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ClassifierHead, PoolType } from '../../layers/classifier.js';
import { Conv2d } from '../../layers/conv2d.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { interpolateRows } from '../../layers/interpolate.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { resampleAbsPosEmbedNhwc, resamplePatchEmbed } from '../../layers/posEmbed.js';
import { RelPosAttention } from '../../layers/relPosAttention.js';
import { Backbone, BackboneCommonConfig, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { ViTDetBlock } from './vitDetBlock.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { resolveConfig } from '../resolveConfig.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Configuration of {@link vitDet} (timm's `VisionTransformerSAM` arguments, camelCase). */
export interface VitDetConfig extends BackboneCommonConfig {
  /** Square image size the position embedding and global rel-pos tables are built for. Default 1024. */
  imgSize?: number;
  /** Default 16. */
  patchSize?: number;
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
  /** LayerScale init value (null = none). */
  initValues?: number | null;
  /** LayerNorm after the embeddings; disables the patch-embedding bias. */
  preNorm?: boolean;
  posDropRate?: number;
  projDropRate?: number;
  attnDropRate?: number;
  /** Absolute NHWC position embedding `[1, H/p, W/p, C]`. Default true. */
  useAbsPos?: boolean;
  /** Decomposed relative positions in every block. Default false (the SAM variants set true). */
  useRelPos?: boolean;
  /** Window of the windowed blocks; 0 = every block global. Default 14. */
  windowSize?: number;
  /** Blocks with global attention. Default none. */
  globalAttnIndexes?: number[];
  /** Channels of the conv neck (1x1 conv, LN, 3x3 conv, LN); null = a single LayerNorm2d. Default 256. */
  neckChans?: number | null;
  /** Default 'avg'. */
  globalPool?: PoolType;
  /**
   * Zero-pad the token grid to a multiple of the window (timm / ViTDet behaviour, default true). With
   * false, every grid must be a multiple of the window, which is then checked.
   */
  windowPadding?: boolean;
  /** LayerNorm epsilon of the blocks (PyTorch's `nn.LayerNorm` default 1e-5). */
  normEps?: number;
  /** LayerNorm2d epsilon of the neck (timm's `LayerNorm2d` default 1e-6). */
  neckNormEps?: number;
}

/** The defaults of {@link VitDetConfig} (timm's `VisionTransformerSAM` defaults); `outIndices` defaults to every level. */
export const VITDET_DEFAULTS: Required<Omit<VitDetConfig, 'outIndices'>> = {
  imgSize: 1024,
  patchSize: 16,
  embedDim: 768,
  depth: 12,
  numHeads: 12,
  mlpRatio: 4,
  qkvBias: true,
  qkNorm: false,
  initValues: null,
  preNorm: false,
  posDropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  useAbsPos: true,
  useRelPos: false,
  windowSize: 14,
  globalAttnIndexes: [],
  neckChans: 256,
  globalPool: 'avg',
  windowPadding: true,
  normEps: 1e-5,
  neckNormEps: 1e-6,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  dropRate: 0,
  dropPathRate: 0,
};

/**
 * ViTDet's plain backbone as in SAM's image encoder (Li et al. 2022; Kirillov et al. 2023) with timm's
 * layout: patch embedding to an NHWC token grid, optional absolute NHWC position embedding (resampled to
 * the input grid), windowed blocks with global blocks at `globalAttnIndexes`, decomposed relative
 * positions, and a conv neck. `forwardFeatures` returns the NHWC neck output; intermediates are the
 * neck-free NHWC block outputs. Accepts any input whose sides are multiples of the patch size.
 */
export class VisionTransformerSAM extends Backbone {
  readonly patchEmbed: PatchEmbed;
  readonly posEmbed: Parameter | null;
  readonly normPre: LayerNorm | null;
  readonly blocks: ModuleList<ViTDetBlock>;
  readonly neck: Module;
  head: ClassifierHead;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly imgSize: number;
  readonly patchSize: number;
  readonly gridSize: [number, number];
  readonly embedDim: number;
  readonly windowSize: number;
  readonly globalAttnIndexes: number[];
  private globalPoolType: PoolType;

  constructor(config: VitDetConfig = {}) {
    super();
    const cfg: VitDetConfig = resolveConfig(VITDET_DEFAULTS, config);
    this.config = cfg as Record<string, unknown>;
    this.family = 'vitdet';
    const img = cfg.imgSize ?? 1024;
    const patch = cfg.patchSize ?? 16;
    const dim = cfg.embedDim ?? 768;
    const depth = cfg.depth ?? 12;
    const heads = cfg.numHeads ?? 12;
    const ws = cfg.windowSize ?? 14;
    const globals = cfg.globalAttnIndexes ?? [];
    this.imgSize = img;
    this.patchSize = patch;
    this.embedDim = dim;
    this.windowSize = ws;
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.globalPoolType = cfg.globalPool ?? 'avg';
    check(Number.isInteger(patch) && patch > 0, () => `patchSize must be a positive integer, got ${patch}`);
    check(
      Number.isInteger(img) && img >= patch && img % patch === 0,
      () => `imgSize ${img} is not a positive multiple of patchSize ${patch}`,
    );
    check(Number.isInteger(depth) && depth > 0, () => `depth must be a positive integer, got ${depth}`);
    check(Number.isInteger(heads) && heads > 0 && dim % heads === 0, () => `numHeads ${heads} does not divide embedDim ${dim}`);
    check(Number.isInteger(ws) && ws >= 0, () => `windowSize must be a non-negative integer (0 = global attention everywhere), got ${ws}`);
    for (const g of globals) {
      check(
        Number.isInteger(g) && g >= 0 && g < depth,
        () => `globalAttnIndexes entry ${g} is out of range: expected block indices 0..${depth - 1} (depth ${depth})`,
      );
    }
    this.globalAttnIndexes = [...new Set(globals)].sort((a, b) => a - b);
    check(
      ['', 'avg', 'max', 'avgmax'].includes(this.globalPoolType),
      () => `globalPool '${this.globalPoolType}' is not supported for the NHWC neck output: expected '', 'avg', 'max' or 'avgmax'`,
    );
    const grid = img / patch;
    this.gridSize = [grid, grid];
    if (ws > 0 && this.globalAttnIndexes.length < depth) this.checkWindowFits(this.gridSize);

    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed({ patchSize: patch, inChans: this.inChans, embedDim: dim, bias: !(cfg.preNorm ?? false) }),
    );
    this.posEmbed = (cfg.useAbsPos ?? true) ? this.addParameter('pos_embed', tf.zeros([1, grid, grid, dim])) : null;
    const eps = cfg.normEps ?? 1e-5;
    this.normPre = cfg.preNorm ? this.addModule('norm_pre', new LayerNorm(dim, eps)) : null;
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, [depth])[0];
    this.blocks = this.addModule('blocks', new ModuleList<ViTDetBlock>());
    for (let i = 0; i < depth; i++) {
      const blk = new ViTDetBlock({
        dim,
        numHeads: heads,
        mlpRatio: cfg.mlpRatio ?? 4,
        qkvBias: cfg.qkvBias ?? true,
        qkNorm: cfg.qkNorm ?? false,
        projDrop: cfg.projDropRate ?? 0,
        attnDrop: cfg.attnDropRate ?? 0,
        initValues: cfg.initValues ?? null,
        dropPath: dpr[i],
        useRelPos: cfg.useRelPos ?? false,
        windowSize: this.globalAttnIndexes.includes(i) ? 0 : ws,
        inputSize: this.gridSize,
        normEps: eps,
      });
      this.blocks.push(blk);
    }
    const neckChans = cfg.neckChans === undefined ? 256 : cfg.neckChans;
    const neckEps = cfg.neckNormEps ?? 1e-6;
    if (neckChans) {
      check(Number.isInteger(neckChans) && neckChans > 0, () => `neckChans must be a positive integer or null, got ${neckChans}`);
      this.neck = this.addModule(
        'neck',
        new ModuleList([
          new Conv2d(dim, neckChans, 1, { bias: false }),
          new LayerNorm(neckChans, neckEps),
          new Conv2d(neckChans, neckChans, 3, { padding: 1, bias: false }),
          new LayerNorm(neckChans, neckEps),
        ]),
      );
      this.numFeatures = neckChans;
    } else {
      this.neck = this.addModule('neck', new LayerNorm(dim, neckEps));
      this.numFeatures = dim;
    }
    this.head = this.addModule(
      'head',
      new ClassifierHead({
        inChans: this.numFeatures,
        numClasses: this.numClasses,
        poolType: this.globalPoolType,
        dropRate: cfg.dropRate ?? 0,
      }),
    );
    this.featureInfo = this.blocks.items.map((_, i) => ({ numChs: dim, reduction: patch, module: `blocks.${i}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
  }

  /** With `windowPadding: false`, the token grid must be a multiple of the window. */
  private checkWindowFits(grid: [number, number]): void {
    if (this.config.windowPadding ?? true) return;
    const ws = this.windowSize;
    const where = `token grid ${grid[0]}x${grid[1]} (image / patchSize ${this.patchSize})`;
    check(
      grid[0] >= ws && grid[1] >= ws,
      () => `windowSize ${ws} is larger than the ${where} and windowPadding is false: use a window <= the grid, or windowPadding: true`,
    );
    check(
      grid[0] % ws === 0 && grid[1] % ws === 0,
      () =>
        `windowSize ${ws} does not divide the ${where} and windowPadding is false: pick a window that divides the grid, or windowPadding: true`,
    );
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    const p = this.patchSize;
    check(h > 0 && w > 0 && h % p === 0 && w % p === 0, () => `input ${h}x${w} is not a multiple of patchSize ${p}`);
    if (this.windowSize > 0 && this.globalAttnIndexes.length < this.blocks.length) this.checkWindowFits([h / p, w / p]);
  }

  /** Patch embedding plus the (resampled) absolute position embedding, then `norm_pre`: NHWC tokens. */
  embed(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y: tf.Tensor = this.patchEmbed.forward(x);
      if (this.posEmbed) {
        const [, gh, gw] = y.shape;
        y = tf.add(y, resampleAbsPosEmbedNhwc(this.posEmbed.value, [gh, gw]));
      }
      y = dropout(y, (this.config.posDropRate as number | undefined) ?? 0, opts.training ?? false);
      return (this.normPre ? this.normPre.forward(y) : y) as tf.Tensor4D;
    });
  }

  /** The neck on an NHWC trunk output. */
  forwardNeck(x: tf.Tensor): tf.Tensor4D {
    return this.neck.forward(x) as tf.Tensor4D;
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y: tf.Tensor = this.embed(x, opts);
      for (const blk of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, blk, y, (u) => blk.forward(u, opts));
      return this.forwardNeck(y);
    });
  }

  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return this.head.forward(x, opts);
  }

  /** Block outputs (NHWC, neck-free); `norm: true` passes each through the neck, as timm. */
  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    return {
      numLevels: this.blocks.length,
      stem: (x) => this.embed(x, opts),
      level: (i, y) => maybeCheckpoint(this.gradCheckpointing, opts, this.blocks.items[i], y, (u) => this.blocks.items[i].forward(u, opts)),
      output: (_i, y) => (opts.norm ? this.forwardNeck(y) : (y.clone() as tf.Tensor4D)),
      final: (y) => this.forwardNeck(y),
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    this.numClasses = numClasses;
    if (globalPool !== undefined) this.globalPoolType = globalPool as PoolType;
    this.head = this.replaceModule(
      'head',
      new ClassifierHead({
        inChans: this.numFeatures,
        numClasses,
        poolType: this.globalPoolType,
        dropRate: (this.config.dropRate as number) ?? 0,
      }),
    );
  }

  /**
   * timm's SAM `checkpoint_filter_fn` (original SAM checkpoints: `image_encoder.` prefix stripped,
   * `mlp.lin*` renamed to `mlp.fc*`, other keys dropped), plus the adaptations timm makes at run time
   * done once at load: a position embedding of another grid is resampled (bicubic, antialiased, as
   * `resample_abs_pos_embed_nhwc`), relative-position tables of another length are linearly resized
   * (as `get_rel_pos`), and a patch kernel of another size is resampled (FlexiViT PI-resize).
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const created: tf.Tensor[] = [];
    const out: Record<string, tf.Tensor> = {};
    const sam = 'image_encoder.patch_embed.proj.weight' in sd;
    for (let [k, v] of Object.entries(sd)) {
      if (sam) {
        if (!k.startsWith('image_encoder.')) continue;
        k = k.slice('image_encoder.'.length).replace('mlp.lin', 'mlp.fc');
      }
      if (k === 'pos_embed' && this.posEmbed && v.rank === 4 && (v.shape[1] !== this.gridSize[0] || v.shape[2] !== this.gridSize[1])) {
        v = resampleAbsPosEmbedNhwc(v, this.gridSize);
        created.push(v);
      } else if (k === 'patch_embed.proj.weight' && v.rank === 4 && (v.shape[2] !== this.patchSize || v.shape[3] !== this.patchSize)) {
        v = resamplePatchEmbed(v, [this.patchSize, this.patchSize], { interpolation: 'bicubic', antialias: true });
        created.push(v);
      } else if (/\.attn\.rel_pos_[hw]$/.test(k) && v.rank === 2) {
        const attn = this.findSubmodule(k.slice(0, k.lastIndexOf('.')));
        const p = attn instanceof RelPosAttention ? (k.endsWith('_h') ? attn.relPosH : attn.relPosW) : null;
        if (p && p.variable.shape[0] !== v.shape[0]) {
          v = interpolateRows(v, p.variable.shape[0], { mode: 'linear' });
          created.push(v);
        }
      }
      out[k] = v;
    }
    return { sd: out, created };
  }

  /** timm's SAM-ViT `group_matcher`: embeddings, then one group per block. */
  groupMatcher(): GroupMatcher {
    return {
      stem: '^pos_embed|patch_embed',
      blocks: [
        ['^blocks\\.(\\d+)', null],
        ['^norm', [MATCH_PREV_GROUP]],
      ],
    };
  }

  /** timm: `pos_embed`, `dist_token`. */
  override noWeightDecay(): string[] {
    return ['pos_embed', 'dist_token'];
  }
}

/** Build a ViTDet / SAM-style plain backbone (timm's `VisionTransformerSAM`). */
export function vitDet(config: VitDetConfig = {}): VisionTransformerSAM {
  return new VisionTransformerSAM(config);
}
