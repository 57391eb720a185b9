import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Identity } from '../../layers/activations.js';
import { ConvMerge } from '../../layers/convMerge.js';
import { ConvTokenEmbed } from '../../layers/convTokenEmbed.js';
import { dropPathRates } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { Backbone, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import { CSWIN_DEFAULTS, CSWinConfig } from './config.js';
import { resolveConfig } from '../resolveConfig.js';
import { CSWinStage } from './cswinBlock.js';
import { GroupMatcher, MATCH_PREV_GROUP } from '../groupMatcher.js';

/** Output side of a conv (PyTorch's formula). */
const convOut = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

/**
 * CSWin Transformer (Dong et al. 2022) with the official layout and state-dict names: convolutional
 * token embedding (`stage1_conv_embed`), four stages of cross-shaped window attention blocks
 * (`stage1`..`stage4`, the last with full attention) joined by convolutional merges (`merge1`..`merge3`),
 * a final LayerNorm (`norm`), token averaging and a linear classifier (`head`). NHWC throughout;
 * `forwardFeatures` returns the normalised last-stage map.
 */
export class CSWinTransformer extends Backbone {
  readonly stem: ConvTokenEmbed;
  readonly stages: CSWinStage[] = [];
  readonly merges: ConvMerge[] = [];
  readonly norm: LayerNorm;
  head: Linear | Identity;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly imgSize: [number, number];
  /** `[H, W]` of each stage's token map. */
  readonly resolutions: [number, number][];
  readonly dims: number[];

  constructor(config: CSWinConfig = {}) {
    super();
    const cfg: CSWinConfig = resolveConfig(CSWIN_DEFAULTS, config);
    this.config = cfg as Record<string, unknown>;
    this.family = 'cswin';
    const depth = cfg.depth ?? [2, 2, 6, 2];
    check(depth.length === 4, () => `depth must list 4 stages, got [${depth.join(', ')}]`);
    const nh = cfg.numHeads ?? 12;
    const heads = Array.isArray(nh) ? nh.slice() : depth.map(() => nh);
    check(heads.length === 4, () => `numHeads must list 4 stages, got [${heads.join(', ')}]`);
    const split = cfg.splitSize ?? [3, 5, 7];
    check(
      split.length >= 3,
      () => `splitSize must list at least 3 stripe widths (stages 1-3; the last also serves stage 4), got [${split.join(', ')}]`,
    );
    const splits = [split[0], split[1], split[2], split[split.length - 1]];
    const embed = cfg.embedDim ?? 96;
    this.dims = [embed, 2 * embed, 4 * embed, 8 * embed];
    const img = cfg.imgSize ?? 224;
    this.imgSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
    this.inChans = cfg.inChans ?? 3;
    const featuresOnly = cfg.featuresOnly ?? false;
    this.numClasses = featuresOnly ? 0 : (cfg.numClasses ?? 1000);
    this.numFeatures = this.dims[3];
    check((cfg.globalPool ?? 'avg') === 'avg', () => `globalPool '${cfg.globalPool}' is not supported: CSWin averages the tokens ('avg')`);

    // geometry: conv sizes must agree with the official img_size // 4, // 8, // 16, // 32 token maps
    const sizeText = this.imgSize.join('x');
    this.resolutions = [];
    let r: [number, number] = [convOut(this.imgSize[0], 7, 4, 2), convOut(this.imgSize[1], 7, 4, 2)];
    for (let i = 0; i < 4; i++) {
      if (i > 0) r = [convOut(r[0], 3, 2, 1), convOut(r[1], 3, 2, 1)];
      const f = 4 * 2 ** i;
      const want: [number, number] = [Math.floor(this.imgSize[0] / f), Math.floor(this.imgSize[1] / f)];
      check(
        r[0] === want[0] && r[1] === want[1] && r[0] > 0 && r[1] > 0,
        () =>
          `imgSize ${sizeText} does not give consistent stage resolutions: stage ${i + 1} would be ${r.join('x')} after the convolutions but ${want.join('x')} (= imgSize / ${f}); use a multiple of 32`,
      );
      this.resolutions.push(r);
      check(this.dims[i] % heads[i] === 0, () => `numHeads[${i}] = ${heads[i]} does not divide stage ${i + 1}'s width ${this.dims[i]}`);
      const full = i === 3 || (r[0] === splits[i] && r[1] === splits[i]);
      if (!full) {
        check(
          heads[i] % 2 === 0,
          () =>
            `numHeads[${i}] = ${heads[i]} cannot be split evenly between the vertical and horizontal stripe branches of stage ${i + 1} (needs an even count)`,
        );
        check(
          r[0] % splits[i] === 0 && r[1] % splits[i] === 0,
          () =>
            `splitSize[${i}] = ${splits[i]} does not divide stage ${i + 1}'s ${r.join('x')} token map (imgSize ${sizeText} / ${f}): stripes must tile it`,
        );
      }
    }

    this.stem = this.addModule('stage1_conv_embed', new ConvTokenEmbed({ inChans: this.inChans, embedDim: embed, normEps: 1e-5 }));
    const dpr = dropPathRates(cfg.dropPathRate ?? 0, depth);
    for (let i = 0; i < 4; i++) {
      if (i > 0)
        this.merges.push(this.addModule(`merge${i}`, new ConvMerge({ dim: this.dims[i - 1], outDim: this.dims[i], normEps: 1e-5 })));
      const st = new CSWinStage({
        dim: this.dims[i],
        numHeads: heads[i],
        resolution: this.resolutions[i],
        splitSize: splits[i],
        lastStage: i === 3,
        mlpRatio: cfg.mlpRatio ?? 4,
        qkvBias: cfg.qkvBias ?? true,
        qkScale: cfg.qkScale ?? null,
        drop: cfg.dropRate ?? 0,
        attnDrop: cfg.attnDropRate ?? 0,
        normEps: 1e-5,
        depth: depth[i],
        dropPath: dpr[i],
      });
      this.stages.push(this.addModule(`stage${i + 1}`, st));
    }
    this.norm = this.addModule('norm', new LayerNorm(this.numFeatures, 1e-5));
    this.head = this.addModule('head', this.makeHead(this.numClasses));
    this.featureInfo = this.dims.map((d, i) => ({ numChs: d, reduction: 4 * 2 ** i, module: `stage${i + 1}` }));
    this.initFeatures(cfg);
    cfg.outIndices = [...this.outIndices];
    // the official `use_chk`: checkpoint every block
    if (cfg.useChk) this.setGradCheckpointing(true);
  }

  private makeHead(numClasses: number): Linear | Identity {
    return numClasses > 0 ? new Linear(this.numFeatures, numClasses) : new Identity();
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    check(
      h === this.imgSize[0] && w === this.imgSize[1],
      () =>
        `expected ${this.imgSize[0]}x${this.imgSize[1]} input (imgSize), got ${h}x${w}; build the model with imgSize: [${h}, ${w}] for another size (the stripe geometry is fixed per size)`,
    );
  }

  /** Stage `i` (after the merge that precedes it, for stages 2..). */
  private level(i: number, y: tf.Tensor, opts: ForwardOptions): tf.Tensor4D {
    return this.stages[i].forward(i > 0 ? this.merges[i - 1].forward(y) : y, opts);
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y: tf.Tensor = this.stem.forward(x);
      for (let i = 0; i < 4; i++) y = this.level(i, y, opts);
      return this.norm.forward(y) as tf.Tensor4D;
    });
  }

  /** Token mean (the official `torch.mean(x, dim=1)`) then `head`; `preLogits` returns the mean. */
  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    const c = x.shape[x.rank - 1];
    check(c === this.numFeatures, () => `head expected ${this.numFeatures} channels, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => {
      const pooled = x.rank === 4 ? tf.mean(x, [1, 2]) : x.rank === 3 ? tf.mean(x, 1) : x.clone();
      if (opts.preLogits) return pooled as tf.Tensor2D;
      return this.head.forward(pooled) as tf.Tensor2D;
    });
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    return {
      numLevels: 4,
      stem: (x) => this.stem.forward(x),
      level: (i, y) => this.level(i, y, opts),
      output: (i, y) => (opts.norm && i === 3 ? this.norm.forward(y) : y.clone()) as tf.Tensor4D,
      final: (y) => this.norm.forward(y),
    };
  }

  resetClassifier(numClasses: number, globalPool?: string): void {
    check(
      globalPool === undefined || globalPool === 'avg',
      () => `globalPool '${globalPool}' is not supported: CSWin averages the tokens ('avg')`,
    );
    this.numClasses = numClasses;
    this.head = this.replaceModule('head', this.makeHead(numClasses));
  }

  /**
   * CSWin's grouping (the official code has none): stem `stage1_conv_embed`; `stage<s>.<j>` is block j of
   * stage s-1; `merge<m>` (which precedes stage m+1) joins that stage's first block, as Swin's downsample.
   */
  groupMatcher(coarse = false): GroupMatcher {
    return (name) => {
      if (/^stage1_conv_embed\./.test(name)) return [0];
      let r = /^stage(\d+)\.(\d+)\./.exec(name);
      if (r) return coarse ? [1, Number(r[1]) - 1] : [1, Number(r[1]) - 1, Number(r[2])];
      r = /^merge(\d+)\./.exec(name);
      if (r) return coarse ? [1, Number(r[1])] : [1, Number(r[1]), 0];
      if (!coarse && /^norm\./.test(name)) return [1, MATCH_PREV_GROUP];
      return [Infinity];
    };
  }
}

/** Build a CSWin Transformer (the official `CSWinTransformer`; official state-dict names). */
export function cswin(config: CSWinConfig = {}): CSWinTransformer {
  return new CSWinTransformer(config);
}
