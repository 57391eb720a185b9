import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ClassifierHead, NormMlpClassifierHead as NormClassifierHead, PoolType } from '../../layers/classifier.js';
import { Conv2d } from '../../layers/conv2d.js';
import { ConvNeXtBlock } from '../../layers/convNextBlock.js';
import { dropPathRates } from '../../layers/dropPath.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { Backbone, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { convnextCheckpointFilter } from './checkpointFilter.js';
import { CONVNEXT_DEFAULTS, ConvNeXtConfig } from './config.js';
import { resolveConfig } from '../resolveConfig.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link ConvNeXtStage}. */
export interface ConvNeXtStageOptions {
  inChs: number;
  outChs: number;
  depth: number;
  /** Downsample (LayerNorm + 2x2 stride-2 conv) at the start of the stage. */
  downsample: boolean;
  kernelSize: number;
  dropPath: number[];
  lsInitValue: number | null;
  convMlp: boolean;
  convBias: boolean;
  useGrn: boolean;
  act: ConvNeXtConfig['actLayer'];
  normEps: number;
}

/**
 * A ConvNeXt stage (Liu et al. 2022, sec. 2.2): optional downsampling layer (LayerNorm over channels,
 * then a 2x2 stride-2 conv; sec. 2.6 "separate downsampling layers") and `depth` blocks. NHWC.
 * State-dict keys `downsample.0.*` (norm), `downsample.1.*` (conv), `blocks.<j>.*` (timm's).
 */
export class ConvNeXtStage extends Module {
  readonly downsample: ModuleList | null;
  readonly blocks: ModuleList<ConvNeXtBlock>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  constructor(readonly opts: ConvNeXtStageOptions) {
    super();
    this.config = { ...opts };
    check(
      opts.downsample || opts.inChs === opts.outChs,
      () => `ConvNeXtStage: ${opts.inChs} -> ${opts.outChs} channels needs downsample: true`,
    );
    this.downsample = opts.downsample
      ? this.addModule(
          'downsample',
          new ModuleList<Module>([
            new LayerNorm(opts.inChs, opts.normEps),
            new Conv2d(opts.inChs, opts.outChs, 2, { stride: 2, bias: opts.convBias }),
          ]),
        )
      : null;
    this.blocks = this.addModule('blocks', new ModuleList<ConvNeXtBlock>());
    for (let j = 0; j < opts.depth; j++) {
      this.blocks.push(
        new ConvNeXtBlock({
          dim: opts.outChs,
          kernelSize: opts.kernelSize,
          lsInitValue: opts.lsInitValue,
          convMlp: opts.convMlp,
          convBias: opts.convBias,
          useGrn: opts.useGrn,
          act: opts.act,
          normEps: opts.normEps,
          dropPath: opts.dropPath[j] ?? 0,
        }),
      );
    }
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.downsample ? this.downsample.forward(x) : x;
      for (const b of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, b, y, (u) => b.forward(u, opts));
      return (y === x ? x.clone() : y) as tf.Tensor4D;
    });
  }
}

/**
 * ConvNeXt (Liu et al. 2022) / ConvNeXt V2 (Woo et al. 2023) with timm's layout: patch stem
 * (`stem.0` conv, `stem.1` LayerNorm), four stages (`stages.<i>`), and timm's head (global pool ->
 * `head.norm` -> `head.fc`), or `norm_pre` + `head.fc` when `headNormFirst`. NHWC throughout;
 * `forwardFeatures` returns the last stage's map (after `norm_pre`, which is the identity by default).
 */
export class ConvNeXt extends Backbone {
  readonly stem: ModuleList;
  readonly stages: ModuleList<ConvNeXtStage>;
  readonly normPre: LayerNorm | null;
  head: NormClassifierHead | ClassifierHead | null;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly dims: number[];
  readonly patchSize: number;
  private globalPoolType: 'avg' | 'max' | 'avgmax';
  private readonly normEps: number;

  constructor(config: ConvNeXtConfig = {}) {
    super();
    const cfg: ConvNeXtConfig = resolveConfig(CONVNEXT_DEFAULTS, config);
    this.config = cfg as Record<string, unknown>;
    this.family = 'convnextv2';
    const depths = cfg.depths ?? [3, 3, 9, 3];
    this.dims = (cfg.dims ?? [96, 192, 384, 768]).slice();
    const n = depths.length;
    check(n > 0 && this.dims.length === n, () => `dims lists ${this.dims.length} widths for ${n} stages (depths [${depths.join(', ')}])`);
    const ks = cfg.kernelSizes ?? 7;
    const kernelSizes = Array.isArray(ks) ? ks.slice() : depths.map(() => ks);
    check(kernelSizes.length === n, () => `kernelSizes lists ${kernelSizes.length} sizes for ${n} stages`);
    check((cfg.stemType ?? 'patch') === 'patch', () => `stemType '${cfg.stemType}' is not supported (only 'patch')`);
    check((cfg.outputStride ?? 32) === 32, () => `outputStride ${cfg.outputStride} is not supported (only 32)`);
    check(cfg.headHiddenSize == null, () => `headHiddenSize ${cfg.headHiddenSize} is not supported (only null)`);
    const normLayer = cfg.normLayer ?? 'layernorm';
    check(normLayer === 'layernorm' || normLayer === 'layernorm2d', () => `normLayer '${normLayer}' is not supported (only 'layernorm')`);
    this.normEps = cfg.normEps ?? 1e-6;
    this.patchSize = cfg.patchSize ?? 4;
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.numFeatures = this.dims[n - 1];
    const gp = cfg.globalPool ?? 'avg';
    check(gp === 'avg' || gp === 'max' || gp === 'avgmax', () => `globalPool '${gp}' is not supported (use 'avg', 'max' or 'avgmax')`);
    this.globalPoolType = gp;
    const convBias = cfg.convBias ?? true;

    this.stem = this.addModule(
      'stem',
      new ModuleList<Module>([
        new Conv2d(this.inChans, this.dims[0], this.patchSize, { stride: this.patchSize, bias: convBias }),
        new LayerNorm(this.dims[0], this.normEps),
      ]),
    );
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, depths);
    this.stages = this.addModule('stages', new ModuleList<ConvNeXtStage>());
    for (let i = 0; i < n; i++) {
      const st = new ConvNeXtStage({
        inChs: i === 0 ? this.dims[0] : this.dims[i - 1],
        outChs: this.dims[i],
        depth: depths[i],
        downsample: i > 0,
        kernelSize: kernelSizes[i],
        dropPath: dpr[i],
        lsInitValue: cfg.lsInitValue === undefined ? 1e-6 : cfg.lsInitValue,
        convMlp: cfg.convMlp ?? false,
        convBias,
        useGrn: cfg.useGrn ?? false,
        act: cfg.actLayer ?? 'gelu',
        normEps: this.normEps,
      });
      this.stages.push(st);
    }
    this.normPre = cfg.headNormFirst ? this.addModule('norm_pre', new LayerNorm(this.numFeatures, this.normEps)) : null;
    this.head = featuresOnly ? null : this.addModule('head', this.makeHead(this.numClasses));
    this.featureInfo = this.dims.map((d, i) => ({ numChs: d, reduction: this.patchSize * 2 ** i, module: `stages.${i}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
  }

  private makeHead(numClasses: number): NormClassifierHead | ClassifierHead {
    const dropRate = (this.config.dropRate as number | undefined) ?? 0;
    if (this.normPre)
      return new ClassifierHead({ inChans: this.numFeatures, numClasses, poolType: this.globalPoolType as PoolType, dropRate });
    return new NormClassifierHead({
      inChans: this.numFeatures,
      numClasses,
      poolType: this.globalPoolType,
      dropRate,
      normEps: this.normEps,
    });
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    const minSize = this.patchSize * 2 ** (this.stages.length - 1);
    check(
      h >= minSize && w >= minSize,
      () =>
        `input ${h}x${w} is too small: the ${this.stages.length} stages (stem stride ${this.patchSize}, then /2 per stage) need at least ${minSize}x${minSize}`,
    );
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y = this.stem.forward(x);
      for (const s of this.stages.items) y = s.forward(y, opts);
      return (this.normPre ? this.normPre.forward(y) : y) as tf.Tensor4D;
    });
  }

  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    check(this.head !== null, 'this featuresOnly model has no head: build it without featuresOnly to classify');
    return this.head.forward(x, opts);
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const last = this.stages.length - 1;
    const pre = (t: tf.Tensor) => (this.normPre ? this.normPre.forward(t) : t.clone()) as tf.Tensor4D;
    return {
      numLevels: this.stages.length,
      stem: (x) => this.stem.forward(x),
      level: (i, y) => this.stages.items[i].forward(y, opts),
      output: (i, y) => (opts.norm && i === last ? pre(y) : (y.clone() as tf.Tensor4D)),
      final: (y) => pre(y),
    };
  }

  /** Replace the classifier (0 removes it); the head's norm keeps its values (timm's `head.reset`). */
  resetClassifier(numClasses: number, globalPool?: string): void {
    if (globalPool !== undefined) {
      check(
        globalPool === 'avg' || globalPool === 'max' || globalPool === 'avgmax',
        () => `globalPool '${globalPool}' is not supported (use 'avg', 'max' or 'avgmax')`,
      );
      this.globalPoolType = globalPool;
    }
    this.numClasses = numClasses;
    const head = this.makeHead(numClasses);
    if (this.head instanceof NormClassifierHead && head instanceof NormClassifierHead) {
      head.norm.weight!.variable.assign(this.head.norm.weight!.value);
      head.norm.bias!.variable.assign(this.head.norm.bias!.value);
    }
    this.head = this.head ? this.replaceModule('head', head) : this.addModule('head', head);
  }

  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    return convnextCheckpointFilter(sd, this);
  }

  /** timm's ConvNeXt `group_matcher`. */
  groupMatcher(coarse = false): GroupMatcher {
    return {
      stem: '^stem',
      blocks: coarse
        ? '^stages\\.(\\d+)'
        : [
            ['^stages\\.(\\d+)\\.downsample', [0]],
            ['^stages\\.(\\d+)\\.blocks\\.(\\d+)', null],
            ['^norm_pre', [MATCH_PREV_GROUP]],
          ],
    };
  }
}

/** Build a ConvNeXt V2 (timm's `ConvNeXt` with `useGrn: true`, `lsInitValue: null` unless overridden). */
export function convnextV2(config: ConvNeXtConfig = {}): ConvNeXt {
  return new ConvNeXt({ useGrn: true, lsInitValue: null, ...config });
}
