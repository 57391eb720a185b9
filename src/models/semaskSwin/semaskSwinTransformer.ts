import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../../errors.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { interpolateNhwc } from '../../layers/interpolate.js';
import { ForwardOptions, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { Backbone, featureTakeIndices, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { resolveConfig } from '../resolveConfig.js';
import type { SemaskSwinConfig } from './config.js';
import { SemaskStage } from './semaskStage.js';

/** What {@link SemaskSwinTransformer.forward} returns without `featuresOnly`: one entry per `outIndices` stage. */
export type SemaskOutput = {
  /** `norm{i}` of each stage output, NHWC `[B, H_i, W_i, embedDim * 2^i]`. */
  features: tf.Tensor4D[];
  /** Each stage's semantic prior logits (no softmax), NHWC `[B, H_i, W_i, numCls]`. */
  semanticMaps: tf.Tensor4D[];
};

/** The official FPN rule for the global semantic layers: stages >= 2 when `embedDim` is 96 or 192 and `numCls > 19`. */
export function defaultSemGlobalStages(embedDim: number, numCls: number, numStages: number): number[] {
  if ((embedDim === 96 || embedDim === 192) && numCls > 19) return Array.from({ length: Math.max(0, numStages - 2) }, (_, i) => i + 2);
  return [];
}

/** The config with every default of the reference class applied. */
export type ResolvedSemaskSwinConfig = Required<Omit<SemaskSwinConfig, 'dropRate'>> & { dropRate: number };

/** The reference defaults of {@link SemaskSwinConfig}; `semGlobalStages` follows the official semantic-layer rule. */
export const SEMASK_SWIN_DEFAULTS: Omit<ResolvedSemaskSwinConfig, 'semGlobalStages'> = {
  pretrainImgSize: 224,
  patchSize: 4,
  numCls: 150,
  semWindowSize: 7,
  numSemBlocks: [1, 1, 1, 1],
  inChans: 3,
  embedDim: 96,
  depths: [2, 2, 6, 2],
  numHeads: [3, 6, 12, 24],
  windowSize: 7,
  mlpRatio: 4,
  qkvBias: true,
  qkScale: null,
  dropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0.2,
  ape: false,
  patchNorm: true,
  outIndices: [0, 1, 2, 3],
  featuresOnly: false,
};

/** {@link SemaskSwinConfig} with the reference defaults (and the official semantic-layer rule) filled in. */
export function resolveSemaskSwinConfig(cfg: SemaskSwinConfig): ResolvedSemaskSwinConfig {
  const out = resolveConfig(SEMASK_SWIN_DEFAULTS, cfg) as ResolvedSemaskSwinConfig;
  out.semGlobalStages = cfg.semGlobalStages ?? defaultSemGlobalStages(out.embedDim, out.numCls, out.depths.length);
  return out;
}

/**
 * The SeMask Swin backbone (Jain et al. 2021, "SeMask: Semantically Masked Transformers for Semantic
 * Segmentation", sec. 3), the official SeMask-FPN encoder: a Swin Transformer of the original
 * (mmseg) kind whose every stage ends in a Semantic Layer that predicts per-token class logits (the
 * semantic prior map, supervised by the per-stage semantic loss) and re-weights the tokens with them.
 * NHWC input of any size (padded to multiples of the patch and windows). `forward` returns, per stage
 * of `outIndices`, `norm{i}` of the stage output and the stage's semantic prior logits. No classifier.
 * State-dict keys as the official code: `patch_embed.*`, `layers.<i>.{blocks.<j>, semantic_layer,
 * downsample}.*`, `norm{i}.*` (and the persistent `relative_position_index` buffers).
 */
export class SemaskSwinTransformer extends Backbone {
  readonly patchEmbed: PatchEmbed;
  readonly absolutePosEmbed: Parameter | null;
  readonly layers: ModuleList<SemaskStage>;
  /** `norm{i}` of each stage in the config's `outIndices`. */
  readonly norms = new Map<number, LayerNorm>();
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses = 0;
  readonly inChans: number;
  readonly cfg: ResolvedSemaskSwinConfig;
  readonly dims: number[];
  override headPrefixes: string[] = [];

  constructor(config: SemaskSwinConfig = {}) {
    super();
    const cfg = resolveSemaskSwinConfig(config);
    this.cfg = cfg;
    this.config = { ...cfg };
    this.family = 'semask_swin';
    const n = cfg.depths.length;
    check(
      n > 0 && cfg.depths.every((d) => Number.isInteger(d) && d > 0),
      () => `depths must be positive integers, got ${JSON.stringify(cfg.depths)}`,
    );
    check(cfg.numHeads.length === n, () => `numHeads has ${cfg.numHeads.length} entries but depths has ${n} stages`);
    check(cfg.numSemBlocks.length >= n, () => `numSemBlocks has ${cfg.numSemBlocks.length} entries but depths has ${n} stages`);
    check(Number.isInteger(cfg.embedDim) && cfg.embedDim > 0, () => `embedDim must be a positive integer, got ${cfg.embedDim}`);
    check(Number.isInteger(cfg.numCls) && cfg.numCls > 0, () => `numCls must be a positive integer, got ${cfg.numCls}`);
    check(Number.isInteger(cfg.patchSize) && cfg.patchSize > 0, () => `patchSize must be a positive integer, got ${cfg.patchSize}`);
    check(Number.isInteger(cfg.windowSize) && cfg.windowSize > 0, () => `windowSize must be a positive integer, got ${cfg.windowSize}`);
    check(
      Number.isInteger(cfg.semWindowSize) && cfg.semWindowSize > 0,
      () => `semWindowSize must be a positive integer, got ${cfg.semWindowSize}`,
    );
    this.dims = cfg.depths.map((_, i) => cfg.embedDim * 2 ** i);
    this.dims.forEach((d, i) =>
      check(
        Number.isInteger(cfg.numHeads[i]) && cfg.numHeads[i] > 0 && d % cfg.numHeads[i] === 0,
        () => `numHeads[${i}] = ${cfg.numHeads[i]} does not divide the stage width ${d}`,
      ),
    );
    for (const s of cfg.semGlobalStages)
      check(Number.isInteger(s) && s >= 0 && s < n, () => `semGlobalStages lists stage ${s}, expected stages 0..${n - 1}`);
    const outs = [...new Set(featureTakeIndices(n, cfg.outIndices).take)].sort((a, b) => a - b);
    for (let i = 0; i < n; i++) {
      check(
        Number.isInteger(cfg.numSemBlocks[i]) && cfg.numSemBlocks[i] >= 0,
        () => `numSemBlocks[${i}] must be a non-negative integer, got ${cfg.numSemBlocks[i]}`,
      );
    }
    this.inChans = cfg.inChans;

    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed({ patchSize: cfg.patchSize, inChans: this.inChans, embedDim: cfg.embedDim, norm: cfg.patchNorm, normEps: 1e-5 }),
    );
    if (cfg.ape) {
      const [ph, pw] = Array.isArray(cfg.pretrainImgSize) ? cfg.pretrainImgSize : [cfg.pretrainImgSize, cfg.pretrainImgSize];
      // kept in the reference layout [1, C, H, W]
      this.absolutePosEmbed = this.addParameter(
        'absolute_pos_embed',
        truncNormal([1, cfg.embedDim, Math.floor(ph / cfg.patchSize), Math.floor(pw / cfg.patchSize)], 0.02),
      );
    } else this.absolutePosEmbed = null;
    const dpr = dropPathRates(cfg.dropPathRate, cfg.depths);
    this.layers = this.addModule('layers', new ModuleList<SemaskStage>());
    for (let i = 0; i < n; i++) {
      const st = new SemaskStage({
        dim: this.dims[i],
        depth: cfg.depths[i],
        numHeads: cfg.numHeads[i],
        windowSize: cfg.windowSize,
        mlpRatio: cfg.mlpRatio,
        qkvBias: cfg.qkvBias,
        qkScale: cfg.qkScale,
        drop: cfg.dropRate,
        attnDrop: cfg.attnDropRate,
        dropPath: dpr[i],
        numCls: cfg.numCls,
        semWindowSize: cfg.semWindowSize,
        numSemBlocks: cfg.numSemBlocks[i],
        semGlobal: cfg.semGlobalStages.includes(i),
        downsample: i < n - 1,
      });
      this.layers.push(st);
    }
    for (const i of outs) this.norms.set(i, this.addModule(`norm${i}`, new LayerNorm(this.dims[i], 1e-5)));
    this.numFeatures = this.dims[n - 1];
    this.featureInfo = this.dims.map((d, i) => ({ numChs: d, reduction: cfg.patchSize * 2 ** i, module: `layers.${i}` }));
    this.initFeatures({ featuresOnly: cfg.featuresOnly, outIndices: outs });
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    check(h > 0 && w > 0, () => `expected a non-empty image, got ${h}x${w}`);
  }

  /** Patch embedding of the zero-padded image (+ the resized absolute position embedding, dropout). */
  private stem(x: tf.Tensor, training: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      const p = this.cfg.patchSize;
      const [, h, w] = x.shape;
      const ph = (p - (h % p)) % p;
      const pw = (p - (w % p)) % p;
      let y: tf.Tensor = this.patchEmbed.forward(
        ph || pw
          ? tf.pad(x, [
              [0, 0],
              [0, ph],
              [0, pw],
              [0, 0],
            ])
          : x,
      );
      if (this.absolutePosEmbed) {
        const [, gh, gw] = y.shape;
        const pe = this.absolutePosEmbed.value.transpose([0, 2, 3, 1]);
        y = tf.add(y, interpolateNhwc(pe, [gh, gw], { mode: 'bicubic' }));
      }
      return dropout(y, this.cfg.dropRate, training) as tf.Tensor4D;
    });
  }

  /**
   * The features and semantic prior maps of the `outIndices` stages. Typed loosely because
   * `Backbone.forward` returns tensors: {@link forwardSemantic} gives the same result typed.
   * With `featuresOnly`, the feature maps only (NHWC[]), as every backbone.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override forward(x: tf.Tensor, opts: ForwardOptions = {}): any {
    if (this.featuresOnly) return this.forwardFeatureMaps(x, opts);
    return this.forwardSemantic(x, opts);
  }

  /** `{ features, semanticMaps }` of the `outIndices` stages (what the reference `forward` returns, NHWC). */
  forwardSemantic(x: tf.Tensor, opts: ForwardOptions = {}): SemaskOutput {
    this.checkInput(x);
    const training = opts.training ?? false;
    const outs = this.outIndices;
    for (const i of outs) {
      check(
        this.layers.items[i].semanticLayer,
        () => `stage ${i} has no semantic layer (numSemBlocks[${i}] = 0), so it has no semantic map: use featuresOnly for its features`,
      );
    }
    const last = Math.max(...outs);
    const res = tf.tidy(() => {
      const features: tf.Tensor4D[] = [];
      const semanticMaps: tf.Tensor4D[] = [];
      let y = this.stem(x, training);
      for (let i = 0; i <= last; i++) {
        if (i > 0) y = this.layers.items[i - 1].merge(y);
        const r = this.layers.items[i].forward(y, opts);
        y = r.x;
        if (outs.includes(i)) {
          features.push(this.normOf(i, y));
          semanticMaps.push(r.seg!);
        } else r.seg?.dispose();
      }
      return { features, semanticMaps };
    });
    return res as SemaskOutput;
  }

  /** Whether every `outIndices` stage has a semantic layer (so {@link forwardSemantic} can run). */
  get hasSemanticLayers(): boolean {
    return this.outIndices.every((i) => this.layers.items[i].semanticLayer !== null);
  }

  private normOf(i: number, y: tf.Tensor4D): tf.Tensor4D {
    const nrm = this.norms.get(i);
    return (nrm ? nrm.forward(y) : y.clone()) as tf.Tensor4D;
  }

  /** The last stage's output after its norm, NHWC (the input of a head that takes one map). */
  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    const last = this.layers.length - 1;
    return tf.tidy(() => this.forwardIntermediates(x, { ...opts, indices: [last], intermediatesOnly: true })[0]);
  }

  /**
   * The model keeps `norm{i}` only for its `outIndices` stages (as the official code): a checkpoint's
   * norms of the other stages are dropped, so a full checkpoint loads into a `featuresOnly` subset.
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const out: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(sd)) {
      const r = /^norm(\d+)\./.exec(k);
      if (r && !this.outIndices.includes(Number(r[1]))) continue;
      out[k] = v;
    }
    return { sd: out, created: [] };
  }

  /** SeMask Swin has no classifier: always throws. */
  forwardHead(_x: tf.Tensor): tf.Tensor2D {
    throw new VisBackbonesError(
      'SeMask Swin has no classifier head: use forward (features and semantic maps) or featuresOnly with a segmentation head',
    );
  }

  /** Only `resetClassifier(0)` is accepted: the backbone has no classifier. */
  resetClassifier(numClasses: number): void {
    check(numClasses === 0, () => `SeMask Swin has no classifier head, so resetClassifier(${numClasses}) is not supported (only 0)`);
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const last = this.layers.length - 1;
    return {
      numLevels: this.layers.length,
      stem: (x) => this.stem(x, opts.training ?? false),
      level: (i, y) => {
        const inp = i > 0 ? this.layers.items[i - 1].merge(y as tf.Tensor4D) : y;
        const r = this.layers.items[i].forward(inp, opts);
        r.seg?.dispose();
        if (inp !== y) inp.dispose();
        return r.x;
      },
      output: (i, y) => this.normOf(i, y as tf.Tensor4D),
      final: (y) => this.normOf(last, y as tf.Tensor4D),
    };
  }

  /** Position embedding, relative-position bias tables and norms (the SeMask-FPN optimizer's no-decay keys). */
  override noWeightDecay(): string[] {
    return ['absolute_pos_embed', '*relative_position_bias_table', '*norm*'];
  }

  /**
   * Groups for layer-wise decay: the patch embedding is the stem, each Swin block a group, the semantic
   * layer the group after a stage's blocks, joined by the stage's patch merging and `norm{i}`.
   */
  groupMatcher(coarse = false): GroupMatcher {
    return {
      stem: '^(?:patch_embed|absolute_pos_embed)',
      blocks: coarse
        ? [
            ['^layers\\.(\\d+)', null],
            ['^norm(\\d+)\\.', null],
          ]
        : [
            ['^layers\\.(\\d+)\\.blocks\\.(\\d+)', null],
            ['^layers\\.(\\d+)\\.semantic_layer', [MATCH_PREV_GROUP - 1]],
            ['^layers\\.(\\d+)\\.downsample', [MATCH_PREV_GROUP]],
            ['^norm(\\d+)\\.', [MATCH_PREV_GROUP]],
          ],
    };
  }

  /**
   * Shifted-window masks, should a checkpoint hold them (the reference computes them per forward). The
   * relative-position indices are persistent buffers of the reference, loaded and written back as I64.
   */
  override derivedBuffers(): RegExp[] {
    return [/(^|\.)attn_mask$/];
  }
}

/** Build a SeMask Swin backbone (the official SeMask-FPN `SeMaskSwinTransformer`). */
export function semaskSwin(config: SemaskSwinConfig = {}): SemaskSwinTransformer {
  return new SemaskSwinTransformer(config);
}
