import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Identity } from '../../layers/activations.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, ModuleList } from '../../layers/module.js';
import { OverlapPatchEmbed } from '../../layers/overlapPatchEmbed.js';
import { Backbone, BackboneCommonConfig, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { PvtV2Stage } from './pvtV2Stage.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { resolveConfig } from '../resolveConfig.js';

/** Config of {@link pvtV2}: timm's `PyramidVisionTransformerV2` arguments in camelCase. */
export interface PvtV2Config extends BackboneCommonConfig {
  /**
   * Optional input size: when given, the stage grids are validated at construction. PVT v2 takes any
   * input whose stage grids are multiples of the `srRatios` (checked per call).
   */
  imgSize?: number | [number, number] | null;
  /** Blocks per stage (default `[3, 4, 6, 3]`). */
  depths?: number[];
  /** Width per stage (default `[64, 128, 256, 512]`). */
  embedDims?: number[];
  numHeads?: number | number[];
  /** Spatial-reduction ratio per stage (default `[8, 4, 2, 1]`); ignored when `linear`. */
  srRatios?: number | number[];
  mlpRatios?: number | number[];
  qkvBias?: boolean;
  /** Linear spatial-reduction attention (7x7 average pooling) and ReLU in the MLP (PVT v2-Li). */
  linear?: boolean;
  projDropRate?: number;
  attnDropRate?: number;
  /** Epsilon of the block and stage norms (timm's `LayerNorm`, 1e-6); patch embeds and reductions use 1e-5. */
  normEps?: number;
  /** 'avg' (default) or '' (no pooling). */
  globalPool?: 'avg' | '';
}

/** The defaults of {@link PvtV2Config} (timm's `PyramidVisionTransformerV2` defaults); `outIndices` defaults to every stage. */
export const PVTV2_DEFAULTS: Required<Omit<PvtV2Config, 'outIndices'>> = {
  imgSize: null,
  depths: [3, 4, 6, 3],
  embedDims: [64, 128, 256, 512],
  numHeads: [1, 2, 4, 8],
  srRatios: [8, 4, 2, 1],
  mlpRatios: [8, 8, 4, 4],
  qkvBias: true,
  linear: false,
  projDropRate: 0,
  attnDropRate: 0,
  normEps: 1e-6,
  globalPool: 'avg',
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  dropRate: 0,
  dropPathRate: 0,
};

/**
 * Pyramid Vision Transformer v2 (Wang et al. 2022, "PVT v2: Improved Baselines with Pyramid Vision
 * Transformer"): an overlapping 7x7 stride-4 patch embedding, then four stages at strides 4-32 of
 * blocks with spatial-reduction attention and a depthwise-conv MLP, each stage ending in LayerNorm.
 * Input NHWC `[B, H, W, inChans]` of any size whose stage grids the `srRatios` divide;
 * `forwardFeatures` returns the last stage's NHWC map. State-dict keys as timm's:
 * `patch_embed.*`, `stages.<i>.{downsample, blocks.<j>, norm}.*`, `head.*`.
 */
export class PyramidVisionTransformerV2 extends Backbone {
  readonly patchEmbed: OverlapPatchEmbed;
  readonly stages: ModuleList<PvtV2Stage>;
  head: Linear | Identity;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly embedDims: number[];
  readonly srRatios: number[];
  readonly linear: boolean;
  globalPoolType: 'avg' | '';

  constructor(config: PvtV2Config = {}) {
    super();
    const cfg: PvtV2Config = resolveConfig(PVTV2_DEFAULTS, config);
    this.config = cfg as Record<string, unknown>;
    this.family = 'pvtv2';
    this.headPrefixes = ['head.'];
    const depths = cfg.depths ?? [3, 4, 6, 3];
    const n = depths.length;
    const perStage = (name: string, v: number | number[]): number[] => {
      const out = Array.isArray(v) ? v.slice() : new Array(n).fill(v);
      check(out.length === n, () => `${name} has ${out.length} entries but depths has ${n} stages`);
      return out;
    };
    this.embedDims = perStage('embedDims', cfg.embedDims ?? [64, 128, 256, 512]);
    const numHeads = perStage('numHeads', cfg.numHeads ?? [1, 2, 4, 8]);
    this.srRatios = perStage('srRatios', cfg.srRatios ?? [8, 4, 2, 1]);
    const mlpRatios = perStage('mlpRatios', cfg.mlpRatios ?? [8, 8, 4, 4]);
    this.linear = cfg.linear ?? false;
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.globalPoolType = cfg.globalPool ?? 'avg';
    check(
      this.globalPoolType === 'avg' || this.globalPoolType === '',
      () => `globalPool '${this.globalPoolType}' is not supported by PVT v2: expected 'avg' or ''`,
    );
    for (let i = 0; i < n; i++) {
      check(Number.isInteger(depths[i]) && depths[i] > 0, () => `depths[${i}] must be a positive integer, got ${depths[i]}`);
      check(
        Number.isInteger(numHeads[i]) && numHeads[i] > 0 && this.embedDims[i] % numHeads[i] === 0,
        () => `numHeads[${i}] = ${numHeads[i]} does not divide embedDims[${i}] = ${this.embedDims[i]}`,
      );
      check(
        Number.isInteger(this.srRatios[i]) && this.srRatios[i] >= 1,
        () => `srRatios[${i}] must be a positive integer, got ${this.srRatios[i]}`,
      );
    }
    if (cfg.imgSize != null) {
      const s = cfg.imgSize;
      this.checkGeometry(Array.isArray(s) ? s[0] : s, Array.isArray(s) ? s[1] : s);
    }

    this.patchEmbed = this.addModule(
      'patch_embed',
      new OverlapPatchEmbed({ patchSize: 7, stride: 4, inChans: this.inChans, embedDim: this.embedDims[0] }),
    );
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, depths);
    this.stages = this.addModule('stages', new ModuleList<PvtV2Stage>());
    for (let i = 0; i < n; i++) {
      const st = new PvtV2Stage({
        dim: i === 0 ? this.embedDims[0] : this.embedDims[i - 1],
        dimOut: this.embedDims[i],
        depth: depths[i],
        downsample: i > 0,
        numHeads: numHeads[i],
        srRatio: this.srRatios[i],
        linear: this.linear,
        mlpRatio: mlpRatios[i],
        qkvBias: cfg.qkvBias ?? true,
        projDrop: cfg.projDropRate ?? 0,
        attnDrop: cfg.attnDropRate ?? 0,
        dropPath: dpr[i],
        normEps: cfg.normEps ?? 1e-6,
      });
      this.stages.push(st);
    }
    this.numFeatures = this.embedDims[n - 1];
    this.head = this.addModule('head', this.makeHead(this.numClasses));
    this.featureInfo = this.embedDims.map((d, i) => ({ numChs: d, reduction: 4 * 2 ** i, module: `stages.${i}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
  }

  private makeHead(numClasses: number): Linear | Identity {
    return numClasses > 0 ? new Linear(this.numFeatures, numClasses) : new Identity();
  }

  /** The NHWC grid of each stage for an `h x w` input (7x7/4 stem, then 3x3/2 per stage). */
  stageGrids(h: number, w: number): [number, number][] {
    const out: [number, number][] = [];
    let g: [number, number] = [Math.floor((h - 1) / 4) + 1, Math.floor((w - 1) / 4) + 1];
    for (let i = 0; i < this.srRatios.length; i++) {
      if (i > 0) g = [Math.floor((g[0] - 1) / 2) + 1, Math.floor((g[1] - 1) / 2) + 1];
      out.push(g);
    }
    return out;
  }

  /** Throw unless every stage grid of an `h x w` input is a multiple of its `srRatio`. */
  private checkGeometry(h: number, w: number): void {
    check(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0, () => `image size must be positive integers, got ${h}x${w}`);
    if (this.linear) return;
    this.stageGrids(h, w).forEach(([gh, gw], i) => {
      const r = this.srRatios[i];
      check(
        r === 1 || (gh % r === 0 && gw % r === 0),
        () =>
          `srRatios[${i}] = ${r} does not divide the stage-${i} token grid ${gh}x${gw} of a ${h}x${w} input: the input size must be a multiple of ${4 * 2 ** i * r} (stride ${4 * 2 ** i} x srRatio ${r})`,
      );
    });
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    this.checkGeometry(h, w);
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y = this.patchEmbed.forward(x);
      for (const s of this.stages.items) y = s.forward(y, opts);
      return y;
    });
  }

  /** Mean over H and W (when `globalPool` is 'avg'), dropout, classifier; `preLogits` returns the pooled features. */
  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      let y: tf.Tensor = this.globalPoolType === 'avg' && x.rank === 4 ? tf.mean(x, [1, 2]) : x;
      y = dropout(y, (this.config.dropRate as number | undefined) ?? 0, opts.training ?? false);
      if (opts.preLogits) return y as tf.Tensor2D;
      return this.head.forward(y) as tf.Tensor2D;
    });
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    return {
      numLevels: this.stages.length,
      stem: (x) => this.patchEmbed.forward(x),
      level: (i, y) => this.stages.items[i].forward(y, opts),
      output: (_i, y) => y.clone() as tf.Tensor4D,
      final: (y) => y,
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    if (globalPool !== undefined) {
      check(globalPool === 'avg' || globalPool === '', () => `globalPool '${globalPool}' is not supported by PVT v2: expected 'avg' or ''`);
      this.globalPoolType = globalPool;
    }
    this.numClasses = numClasses;
    this.head = this.replaceModule('head', this.makeHead(numClasses));
  }

  /**
   * timm's `_checkpoint_filter_fn`: the official PVT v2 checkpoints (`patch_embed1..4`, `block1.0`,
   * `norm1..4`, `dwconv.dwconv`) are renamed to timm's layout; timm checkpoints pass unchanged.
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    if ('patch_embed.proj.weight' in sd) return { sd, created: [] };
    const out: Record<string, tf.Tensor> = {};
    for (const [key, v] of Object.entries(sd)) {
      let k = key;
      if (k.startsWith('patch_embed')) {
        k = k.replace('patch_embed1', 'patch_embed').replace(/^patch_embed([234])/, (_, i) => `stages.${Number(i) - 1}.downsample`);
      }
      k = k.replace('dwconv.dwconv', 'dwconv');
      k = k.replace(/block(\d+)\.(\d+)/, (_, s, j) => `stages.${Number(s) - 1}.blocks.${j}`);
      k = k.replace(/^norm(\d+)/, (_, s) => `stages.${Number(s) - 1}.norm`);
      out[k] = v;
    }
    return { sd: out, created: [] };
  }

  /** timm's PVT v2 `group_matcher`: the patch embedding, then one group per stage. */
  groupMatcher(): GroupMatcher {
    return {
      stem: '^patch_embed',
      blocks: [
        ['^stages\\.(\\d+)', null],
        ['^norm', [MATCH_PREV_GROUP]],
      ],
    };
  }
}

/** Build a PVT v2 (timm's `PyramidVisionTransformerV2`). */
export function pvtV2(config: PvtV2Config = {}): PyramidVisionTransformerV2 {
  return new PyramidVisionTransformerV2(config);
}
