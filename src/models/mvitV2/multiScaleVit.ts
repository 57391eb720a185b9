import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ClassifierHead } from '../../layers/classifier.js';
import { Conv2d } from '../../layers/conv2d.js';
import { dropPathRates } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { Backbone, BackboneCommonConfig, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { MultiScaleVitCfg, ResolvedMultiScaleVitCfg, resolveMultiScaleVitCfg } from './config.js';
import { resolveConfig } from '../resolveConfig.js';
import { MultiScaleVitStage } from './multiScaleBlock.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';

/** Config of {@link mvitV2}: timm's `MultiScaleVit` arguments in camelCase. */
export interface MultiScaleVitConfig extends BackboneCommonConfig {
  /** The architecture (timm's `MultiScaleVitCfg`, camelCase). */
  cfg?: MultiScaleVitCfg;
  /** Input size (default 224); MViTv2 has a fixed input size. */
  imgSize?: number | [number, number];
  /** 'avg' (mean over spatial tokens), 'token' (class token) or '' (none); default 'token' with a class token, else 'avg'. */
  globalPool?: 'avg' | 'token' | '';
}

/**
 * The defaults of {@link MultiScaleVitConfig} (timm's `MultiScaleVit`); `cfg` resolves to every field of
 * {@link ResolvedMultiScaleVitCfg}, `globalPool` to 'token' with a class token else 'avg', `outIndices` to every stage.
 */
export const MVITV2_DEFAULTS: Required<Omit<MultiScaleVitConfig, 'outIndices' | 'cfg' | 'globalPool'>> = {
  imgSize: 224,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  dropRate: 0,
  dropPathRate: 0,
};

/** MViTv2's stem: one overlapping convolution (7x7, stride 4, padding 3). Keys `proj.*`. */
export class MvitPatchEmbed extends Module {
  readonly proj: Conv2d;
  constructor(inChans: number, dimOut: number, kernel: number, stride: number, padding: number) {
    super();
    this.config = { inChans, dimOut, kernel, stride, padding };
    this.proj = this.addModule('proj', new Conv2d(inChans, dimOut, kernel, { stride, padding }));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return this.proj.forward(x);
  }
}

const square = (name: string, p: [number, number]): number => {
  check(p[0] === p[1], () => `cfg.${name} must be square, got [${p.join(', ')}]`);
  return p[0];
};

/**
 * Multiscale Vision Transformer v2 (Li et al. 2022, "MViTv2: Improved Multiscale Vision
 * Transformers for Classification and Detection"): a convolutional stem, then stages of pooling
 * attention blocks whose query pooling halves the resolution while the width doubles, decomposed
 * relative positions and residual pooling (sec. 3). Input NHWC `[B, imgSize, imgSize, inChans]`;
 * `forwardFeatures` gives the normalised tokens `[B, (1 +) h * w, C]` (class token first).
 * State-dict keys as timm's `MultiScaleVit`: `patch_embed.proj`, `cls_token`, `pos_embed`,
 * `stages.<i>.blocks.<j>.*`, `norm`, `head.fc`.
 */
export class MultiScaleVit extends Backbone {
  readonly cfg: ResolvedMultiScaleVitCfg;
  readonly patchEmbed: MvitPatchEmbed;
  readonly clsToken: Parameter | null;
  readonly posEmbed: Parameter | null;
  readonly stages: ModuleList<MultiScaleVitStage>;
  readonly norm: LayerNorm;
  head: ClassifierHead;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly imgSize: [number, number];
  /** Token grid after the stem. */
  readonly patchGrid: [number, number];
  readonly numPrefixTokens: number;
  globalPoolType: 'avg' | 'token' | '';

  constructor(config: MultiScaleVitConfig = {}) {
    super();
    const cfg = resolveMultiScaleVitCfg(config.cfg ?? {});
    const resolved: MultiScaleVitConfig = resolveConfig(MVITV2_DEFAULTS, config);
    resolved.cfg = cfg;
    // timm: the head pools the class token when there is one
    resolved.globalPool = config.globalPool ?? (cfg.useClsToken ? 'token' : 'avg');
    config = resolved;
    this.config = resolved as Record<string, unknown>;
    this.family = 'mvitv2';
    this.cfg = cfg;
    check(!cfg.poolFirst, () => 'cfg.poolFirst = true (timm MultiScaleAttentionPoolFirst) is not supported; no MViTv2 variant uses it');
    check(cfg.normLayer === 'layernorm', () => `cfg.normLayer '${cfg.normLayer}' is not supported: expected 'layernorm'`);
    check(cfg.actLayer === 'gelu', () => `cfg.actLayer '${cfg.actLayer}' is not supported: expected 'gelu'`);
    const img = config.imgSize ?? 224;
    this.imgSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
    this.inChans = config.inChans ?? 3;
    const featuresOnly = config.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (config.numClasses ?? 1000);
    this.globalPoolType = config.globalPool ?? (cfg.useClsToken ? 'token' : 'avg');
    check(
      ['avg', 'token', ''].includes(this.globalPoolType),
      () => `globalPool '${this.globalPoolType}' is not supported: expected 'avg', 'token' or ''`,
    );
    check(this.globalPoolType !== 'token' || cfg.useClsToken, () => "globalPool 'token' needs cfg.useClsToken = true");

    const nStages = cfg.depths.length;
    const pk = square('patchKernel', cfg.patchKernel);
    const ps = square('patchStride', cfg.patchStride);
    const pp = square('patchPadding', cfg.patchPadding);
    const [ih, iw] = this.imgSize;
    check(ih % ps === 0 && iw % ps === 0, () => `image size ${ih}x${iw} is not divisible by cfg.patchStride ${ps}`);
    this.patchEmbed = this.addModule('patch_embed', new MvitPatchEmbed(this.inChans, cfg.embedDim[0], pk, ps, pp));
    const grid: [number, number] = [this.patchEmbed.proj.outSize(ih), this.patchEmbed.proj.outSize(iw)];
    check(
      grid[0] === ih / ps && grid[1] === iw / ps,
      () =>
        `cfg.patchKernel ${pk} / patchPadding ${pp} give a ${grid.join('x')} grid from ${ih}x${iw}, expected ${ih / ps}x${iw / ps} (imgSize / patchStride)`,
    );
    this.patchGrid = grid;
    this.numPrefixTokens = cfg.useClsToken ? 1 : 0;
    this.clsToken = cfg.useClsToken ? this.addParameter('cls_token', truncNormal([1, 1, cfg.embedDim[0]], 0.02)) : null;
    this.posEmbed = cfg.useAbsPos
      ? this.addParameter('pos_embed', truncNormal([1, grid[0] * grid[1] + this.numPrefixTokens, cfg.embedDim[0]], 0.02))
      : null;

    const dpr = dropPathRates(config.dropPathRate ?? 0, cfg.depths);
    this.stages = this.addModule('stages', new ModuleList<MultiScaleVitStage>());
    let dim = cfg.embedDim[0];
    let size = grid;
    let reduction = ps;
    this.featureInfo = [];
    for (let i = 0; i < nStages; i++) {
      const dimOut = cfg.expandAttn ? cfg.embedDim[i] : cfg.embedDim[Math.min(i + 1, nStages - 1)];
      const heads = cfg.numHeads[i];
      const attDim = cfg.expandAttn ? dimOut : dim; // without expandAttn the width changes in the last block's MLP
      check(
        Number.isInteger(heads) && heads > 0 && attDim % heads === 0,
        () => `numHeads[${i}] = ${heads} does not divide the stage-${i} attention width ${attDim}`,
      );
      const sq = cfg.strideQ[i];
      const skv = cfg.strideKv[i];
      for (const [name, s] of [
        ['strideQ', sq],
        ['strideKv', skv],
      ] as const) {
        check(
          size[0] % s[0] === 0 && size[1] % s[1] === 0,
          () =>
            `cfg.${name}[${i}] = [${s.join(', ')}] does not divide the stage-${i} token grid ${size.join('x')} (imgSize ${ih}x${iw}): imgSize must be a multiple of patchStride x the strides`,
        );
      }
      const stage = new MultiScaleVitStage({
        dim,
        dimOut,
        depth: cfg.depths[i],
        numHeads: heads,
        featSize: size,
        mlpRatio: cfg.mlpRatio,
        qkvBias: cfg.qkvBias,
        mode: cfg.mode,
        kernelQ: cfg.kernelQkv,
        kernelKv: cfg.kernelQkv,
        strideQ: sq,
        strideKv: skv,
        hasClsToken: cfg.useClsToken,
        expandAttn: cfg.expandAttn,
        relPosType: cfg.relPosType,
        residualPooling: cfg.residualPooling,
        normEps: cfg.normEps,
        dropPath: dpr[i],
      });
      this.stages.push(stage);
      reduction *= sq[0];
      this.featureInfo.push({ numChs: dimOut, reduction, module: `stages.${i}` });
      dim = dimOut;
      size = stage.outSize;
    }
    this.numFeatures = dim;
    this.norm = this.addModule('norm', new LayerNorm(dim, cfg.normEps));
    this.head = this.addModule(
      'head',
      new ClassifierHead({ inChans: dim, numClasses: this.numClasses, poolType: '', dropRate: config.dropRate ?? 0 }),
    );
    this.initFeatures(config);
    config.outIndices = [...this.outIndices];
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    check(
      h === this.imgSize[0] && w === this.imgSize[1],
      () =>
        `expected ${this.imgSize[0]}x${this.imgSize[1]} input (imgSize; MViTv2 has a fixed input size), got ${h}x${w}; build the model with imgSize: [${h}, ${w}] for another size`,
    );
  }

  /** Stem, class token, position embedding: `[B, (1 +) H * W, C]`. */
  private embed(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const y = this.patchEmbed.forward(x);
      const [b, h, w, c] = y.shape;
      let t = y.reshape([b, h * w, c]) as tf.Tensor3D;
      if (this.clsToken) t = tf.concat([tf.tile(this.clsToken.value, [b, 1, 1]) as tf.Tensor3D, t], 1);
      if (this.posEmbed) t = tf.add(t, this.posEmbed.value);
      return t;
    });
  }

  /** Stage output tokens as an NHWC map (class token dropped). */
  private toMap(t: tf.Tensor3D, size: [number, number]): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, n, c] = t.shape;
      const sp = this.numPrefixTokens ? t.slice([0, this.numPrefixTokens, 0], [b, n - this.numPrefixTokens, c]) : t;
      return sp.reshape([b, size[0], size[1], c]) as tf.Tensor4D;
    });
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkInput(x);
    return tf.tidy(() => {
      let t = this.embed(x);
      for (const s of this.stages.items) t = s.forward(t, opts);
      return this.norm.forward(t) as tf.Tensor3D;
    });
  }

  /** Pool the tokens (mean of the spatial tokens, or the class token) and classify; `preLogits` returns the pooled features. */
  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    return tf.tidy(() => {
      let y: tf.Tensor = x;
      if (x.rank === 3 && this.globalPoolType === 'avg') y = tf.mean(x.slice([0, this.numPrefixTokens, 0], [-1, -1, -1]), 1);
      else if (x.rank === 3 && this.globalPoolType === 'token')
        y = x.slice([0, 0, 0], [-1, 1, -1]).reshape([x.shape[0], x.shape[2] as number]);
      return this.head.forward(y, opts);
    });
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const last = this.stages.length - 1;
    return {
      numLevels: this.stages.length,
      stem: (x) => this.embed(x),
      level: (i, t) => this.stages.items[i].forward(t, opts),
      output: (i, t) => this.toMap((opts.norm && i === last ? this.norm.forward(t) : t) as tf.Tensor3D, this.stages.items[i].outSize),
      final: (t) => this.norm.forward(t),
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    this.numClasses = numClasses;
    if (globalPool !== undefined) {
      check(['avg', 'token', ''].includes(globalPool), () => `globalPool '${globalPool}' is not supported: expected 'avg', 'token' or ''`);
      this.globalPoolType = globalPool as 'avg' | 'token' | '';
    }
    this.head = this.replaceModule(
      'head',
      new ClassifierHead({ inChans: this.numFeatures, numClasses, poolType: '', dropRate: (this.config.dropRate as number) ?? 0 }),
    );
  }

  /**
   * timm's `checkpoint_filter_fn`: the official MViTv2 checkpoints number blocks globally
   * (`blocks.<n>`) and call the width-changing shortcut `proj` and the classifier `head.projection`;
   * they are renamed to `stages.<i>.blocks.<j>`, `shortcut_proj_attn` (or `shortcut_proj_mlp` without
   * `expandAttn`) and `head.fc`. timm checkpoints pass unchanged.
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    if ('stages.0.blocks.0.norm1.weight' in sd) return { sd, created: [] };
    const map: [number, number][] = [];
    this.cfg.depths.forEach((d, s) => {
      for (let j = 0; j < d; j++) map.push([s, j]);
    });
    const shortcut = this.cfg.expandAttn ? 'shortcut_proj_attn' : 'shortcut_proj_mlp';
    const out: Record<string, tf.Tensor> = {};
    for (const [key, v] of Object.entries(sd)) {
      let k = key.replace(/blocks\.(\d+)/, (m, n) => {
        const e = map[Number(n)];
        return e ? `stages.${e[0]}.blocks.${e[1]}` : m;
      });
      k = k.replace(/^(stages\.\d+\.blocks\.\d+)\.proj\./, `$1.${shortcut}.`);
      k = k.replace(/^head\.projection\./, 'head.fc.');
      out[k] = v;
    }
    return { sd: out, created: [] };
  }

  /** timm's MViTv2 `group_matcher`: the patch embedding, then one group per stage. */
  groupMatcher(): GroupMatcher {
    return {
      stem: '^patch_embed',
      blocks: [
        ['^stages\\.(\\d+)', null],
        ['^norm', [MATCH_PREV_GROUP]],
      ],
    };
  }

  /** timm: position embeddings, decomposed relative positions and the class token. */
  override noWeightDecay(): string[] {
    return ['*pos_embed*', '*rel_pos_h*', '*rel_pos_w*', '*cls_token*'];
  }
}

/** Build an MViTv2 (timm's `MultiScaleVit`); `config.cfg` is the `MultiScaleVitCfg`. */
export function mvitV2(config: MultiScaleVitConfig = {}): MultiScaleVit {
  return new MultiScaleVit(config);
}
