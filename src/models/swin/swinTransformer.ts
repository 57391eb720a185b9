import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ClassifierHead, PoolType } from '../../layers/classifier.js';
import { dropPathRates } from '../../layers/dropPath.js';
import { ForwardOptions, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { resamplePatchEmbed } from '../../layers/posEmbed.js';
import { resizeRelPosBiasTable } from '../../layers/relativePosition.js';
import { WindowAttention } from '../../layers/windowAttention.js';
import { Backbone, BackboneCommonConfig, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { SwinStage } from './swinBlock.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { resolveConfig } from '../resolveConfig.js';

/** Configuration of {@link swin} (timm's `SwinTransformer` arguments, camelCase). */
export interface SwinConfig extends BackboneCommonConfig {
  /** Input image size (square number or `[H, W]`). Default 224. */
  imgSize?: number | [number, number];
  patchSize?: number;
  /** Width of the first stage (number), or every stage's width. Default 96. */
  embedDim?: number | number[];
  depths?: number[];
  numHeads?: number[];
  /** Window size, one for all stages or one per stage (Swin-S3). Default 7. */
  windowSize?: number | number[];
  mlpRatio?: number;
  qkvBias?: boolean;
  /** LayerNorm after the patch embedding (default true). */
  patchNorm?: boolean;
  projDropRate?: number;
  attnDropRate?: number;
}

/** Configuration of {@link swinV2}: {@link SwinConfig} plus the pretraining window sizes. */
export interface SwinV2Config extends SwinConfig {
  /** Per-stage window sizes of the pretraining run, for the log-spaced CPB coordinates (0 = none). */
  pretrainedWindowSizes?: number[];
}

/** The defaults of {@link SwinConfig} (timm's `SwinTransformer` defaults); `outIndices` defaults to every stage. */
export const SWIN_DEFAULTS: Required<Omit<SwinConfig, 'outIndices'>> = {
  imgSize: 224,
  patchSize: 4,
  embedDim: 96,
  depths: [2, 2, 6, 2],
  numHeads: [3, 6, 12, 24],
  windowSize: 7,
  mlpRatio: 4,
  qkvBias: true,
  patchNorm: true,
  projDropRate: 0,
  attnDropRate: 0,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  globalPool: 'avg',
  dropRate: 0,
  dropPathRate: 0,
};

/** Which Swin: 'v1' (Swin) or 'v2' (SwinV2). */
export type SwinVersion = 'v1' | 'v2';

/**
 * Swin Transformer (Liu et al. 2021) and Swin Transformer V2 (Liu et al. 2022) with timm's layout:
 * patch embedding, stages of (shifted) window attention blocks with patch merging at the start of
 * stages 1.., final LayerNorm, classifier head `head.fc`. NHWC throughout.
 */
export class SwinTransformer extends Backbone {
  readonly patchEmbed: PatchEmbed;
  readonly layers: ModuleList<SwinStage>;
  readonly norm: LayerNorm;
  head: ClassifierHead;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly imgSize: [number, number];
  readonly dims: number[];
  readonly windowSizes: number[];
  private globalPoolType: PoolType;

  constructor(
    config: SwinV2Config,
    readonly version: SwinVersion,
  ) {
    super();
    const cfg: SwinV2Config = resolveConfig(SWIN_DEFAULTS, config);
    // SwinV2's pretraining windows default to none (0) per stage
    if (version === 'v2') cfg.pretrainedWindowSizes = config.pretrainedWindowSizes ?? cfg.depths!.map(() => 0);
    this.config = cfg as Record<string, unknown>;
    this.family = version === 'v1' ? 'swin' : 'swinv2';
    const depths = cfg.depths ?? [2, 2, 6, 2];
    const numHeads = cfg.numHeads ?? [3, 6, 12, 24];
    const nStages = depths.length;
    check(numHeads.length === nStages, () => `numHeads has ${numHeads.length} entries but depths has ${nStages}`);
    const ed = cfg.embedDim ?? 96;
    this.dims = Array.isArray(ed) ? ed.slice() : depths.map((_, i) => ed * 2 ** i);
    check(this.dims.length === nStages, () => `embedDim lists ${this.dims.length} widths for ${nStages} stages`);
    const ws = cfg.windowSize ?? 7;
    this.windowSizes = Array.isArray(ws) ? ws.slice() : depths.map(() => ws);
    check(this.windowSizes.length === nStages, () => `windowSize lists ${this.windowSizes.length} sizes for ${nStages} stages`);
    const pws = cfg.pretrainedWindowSizes ?? depths.map(() => 0);
    check(pws.length === nStages, () => `pretrainedWindowSizes lists ${pws.length} sizes for ${nStages} stages`);
    const img = cfg.imgSize ?? 224;
    this.imgSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
    const patch = cfg.patchSize ?? 4;
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.numFeatures = this.dims[nStages - 1];
    this.globalPoolType = ((cfg.globalPool as PoolType | undefined) ?? 'avg') as PoolType;

    // validate geometry
    check(
      this.imgSize[0] % patch === 0 && this.imgSize[1] % patch === 0,
      () => `image size ${this.imgSize.join('x')} is not divisible by patchSize ${patch}`,
    );
    const grid: [number, number] = [this.imgSize[0] / patch, this.imgSize[1] / patch];
    const resolutions: [number, number][] = [];
    for (let i = 0; i < nStages; i++) {
      const f = 2 ** i;
      check(
        grid[0] % f === 0 && grid[1] % f === 0,
        () =>
          `image size ${this.imgSize.join('x')} with patchSize ${patch} gives a ${grid.join('x')} grid that cannot be halved ${i} times for stage ${i}`,
      );
      const r: [number, number] = [grid[0] / f, grid[1] / f];
      const w = this.windowSizes[i];
      for (const d of r) {
        const cw = d <= w ? d : w;
        check(
          d % cw === 0,
          () =>
            `stage ${i} resolution ${r.join('x')} (image ${this.imgSize.join('x')} / patchSize ${patch} / ${f}) is not divisible by windowSize ${w}: image size must be a multiple of patchSize x windowSize x 2^stage`,
        );
      }
      check(this.dims[i] % numHeads[i] === 0, () => `numHeads[${i}] = ${numHeads[i]} does not divide the stage width ${this.dims[i]}`);
      resolutions.push(r);
    }

    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed({ patchSize: patch, inChans: this.inChans, embedDim: this.dims[0], norm: cfg.patchNorm ?? true }),
    );
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, depths);
    this.layers = this.addModule('layers', new ModuleList<SwinStage>());
    for (let i = 0; i < nStages; i++) {
      const st = new SwinStage({
        dim: i === 0 ? this.dims[0] : this.dims[i - 1],
        outDim: this.dims[i],
        inputResolution: resolutions[i],
        depth: depths[i],
        downsample: i > 0,
        numHeads: numHeads[i],
        windowSize: this.windowSizes[i],
        mlpRatio: cfg.mlpRatio ?? 4,
        qkvBias: cfg.qkvBias ?? true,
        dropPath: dpr[i],
        projDrop: cfg.projDropRate ?? 0,
        attnDrop: cfg.attnDropRate ?? 0,
        version,
        pretrainedWindowSize: pws[i],
      });
      this.layers.push(st);
      // timm's SwinTransformerV2.__init__ ends with `_init_respostnorm()` on every stage.
      if (version === 'v2') st.initResPostNorm();
    }
    this.norm = this.addModule('norm', new LayerNorm(this.numFeatures, 1e-5));
    this.head = this.addModule(
      'head',
      new ClassifierHead({
        inChans: this.numFeatures,
        numClasses: this.numClasses,
        poolType: this.globalPoolType,
        dropRate: cfg.dropRate ?? 0,
      }),
    );
    this.featureInfo = this.dims.map((d, i) => ({ numChs: d, reduction: patch * 2 ** i, module: `layers.${i}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    check(
      h === this.imgSize[0] && w === this.imgSize[1],
      () =>
        `expected ${this.imgSize[0]}x${this.imgSize[1]} input (imgSize), got ${h}x${w}; build the model with imgSize: [${h}, ${w}] (and load weights into it) for another size`,
    );
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y = this.patchEmbed.forward(x);
      for (const l of this.layers.items) y = l.forward(y, opts);
      return this.norm.forward(y) as tf.Tensor4D;
    });
  }

  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return this.head.forward(x, opts);
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const last = this.layers.length - 1;
    return {
      numLevels: this.layers.length,
      stem: (x) => this.patchEmbed.forward(x),
      level: (i, y) => this.layers.items[i].forward(y, opts),
      output: (i, y) => (opts.norm && i === last ? this.norm.forward(y) : y.clone()) as tf.Tensor4D,
      final: (y) => this.norm.forward(y),
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
   * timm's Swin / SwinV2 `checkpoint_filter_fn`: accepts the original Microsoft layout (downsample at
   * the end of a stage, `head.weight`), and for Swin resizes relative position bias tables to this
   * model's (clamped) windows. SwinV2's continuous position bias needs no resizing. A patch-embedding
   * kernel of another patch size is resampled (FlexiViT PI-resize, bicubic with antialiasing).
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const created: tf.Tensor[] = [];
    const out: Record<string, tf.Tensor> = {};
    const old = !('head.fc.weight' in sd) && Object.keys(sd).some((k) => /^layers\.0\.downsample\./.test(k));
    const oldHead = !('head.fc.weight' in sd) && 'head.weight' in sd;
    for (let [k, v] of Object.entries(sd)) {
      if (old) k = k.replace(/^layers\.(\d+)\.downsample/, (_, i) => `layers.${Number(i) + 1}.downsample`);
      if (oldHead && k.startsWith('head.')) k = k.replace(/^head\./, 'head.fc.');
      if (this.version === 'v1' && k.endsWith('relative_position_bias_table')) {
        const path = k.slice(0, -'.relative_position_bias_table'.length);
        const attn = this.findSubmodule(path);
        if (attn instanceof WindowAttention && v.rank === 2 && v.shape[0] !== attn.relativePositionBiasTable.variable.shape[0]) {
          v = resizeRelPosBiasTable(v, attn.opts.windowSize);
          created.push(v);
        }
      }
      if (k === 'patch_embed.proj.weight' && v.rank === 4) {
        const p = this.patchEmbed.opts.patchSize;
        if (v.shape[2] !== p || v.shape[3] !== p) {
          // timm: resample_patch_embed(v, (H, W), interpolation='bicubic', antialias=True)
          v = resamplePatchEmbed(v, [p, p], { interpolation: 'bicubic', antialias: true });
          created.push(v);
        }
      }
      out[k] = v;
    }
    return { sd: out, created };
  }

  /** timm's Swin / SwinV2 `group_matcher`: stem, then blocks (or whole stages); the final norm joins the last. */
  groupMatcher(coarse = false): GroupMatcher {
    return {
      stem: '^absolute_pos_embed|patch_embed',
      blocks: coarse
        ? '^layers\\.(\\d+)'
        : [
            ['^layers\\.(\\d+).downsample', [0]],
            ['^layers\\.(\\d+)\\.\\w+\\.(\\d+)', null],
            ['^norm', [MATCH_PREV_GROUP]],
          ],
    };
  }

  /** timm: `absolute_pos_embed`, Swin's relative-position bias tables, SwinV2's CPB MLPs and logit scales. */
  override noWeightDecay(): string[] {
    return this.version === 'v1'
      ? ['absolute_pos_embed', '*relative_position_bias_table']
      : ['absolute_pos_embed', '*cpb_mlp*', '*logit_scale'];
  }

  /** Relative-position indices, shifted-window masks, SwinV2's coordinate tables and zero `k_bias`. */
  override derivedBuffers(): RegExp[] {
    return [/relative_position_index$/, /(^|\.)attn_mask$/, /relative_coords_table$/, /\.k_bias$/];
  }
}

/** Build a Swin Transformer (timm's `SwinTransformer`). */
export function swin(config: SwinConfig = {}): SwinTransformer {
  return new SwinTransformer(config, 'v1');
}

/** Build a Swin Transformer V2 (timm's `SwinTransformerV2`). */
export function swinV2(config: SwinV2Config = {}): SwinTransformer {
  return new SwinTransformer(config, 'v2');
}
