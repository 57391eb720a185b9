import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Identity } from '../../layers/activations.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { interpolateNhwc } from '../../layers/interpolate.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { Backbone, FeatureInfo, ForwardIntermediatesOptions, IntermediateSteps } from '../backbone.js';
import type { GroupMatcher } from '../groupMatcher.js';
import type { PvtConfig } from './config.js';
import { PvtBlock } from './pvtBlock.js';
import { resolveConfig } from '../resolveConfig.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** The config with every default of the reference class applied. */
export type ResolvedPvtConfig = Required<Omit<PvtConfig, 'globalPool' | 'outIndices'>> & Pick<PvtConfig, 'outIndices'>;

/** The defaults of {@link PvtConfig} (the official `PyramidVisionTransformer`'s); `outIndices` defaults to every stage. */
export const PVT_DEFAULTS: ResolvedPvtConfig = {
  imgSize: 224,
  patchSize: 16,
  inChans: 3,
  numClasses: 1000,
  embedDims: [64, 128, 256, 512],
  numHeads: [1, 2, 4, 8],
  mlpRatios: [4, 4, 4, 4],
  qkvBias: false,
  qkScale: null,
  depths: [3, 4, 6, 3],
  srRatios: [8, 4, 2, 1],
  numStages: 4,
  dropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0,
  normEps: 1e-5,
  featuresOnly: false,
};

/** {@link PvtConfig} with the reference class defaults filled in. */
export function resolvePvtConfig(cfg: PvtConfig): ResolvedPvtConfig {
  return resolveConfig(PVT_DEFAULTS, cfg);
}

/**
 * Pyramid Vision Transformer v1 (Wang et al. 2021, "Pyramid Vision Transformer: A Versatile Backbone
 * for Dense Prediction without Convolutions"), the official classifier: four stages at strides
 * `patchSize * [1, 2, 4, 8]`, each a non-overlapping patch embedding (LayerNorm eps 1e-5), a learned
 * position embedding and blocks of spatial-reduction attention (sec. 3.3); the last stage prepends a
 * class token, whose normalised state feeds the classifier. NHWC input of any size: the position
 * embeddings, stored for `imgSize`, are resized bilinearly at run time (sec. 3.2). State-dict keys as the
 * official code: `patch_embed{s}.*`, `pos_embed{s}`, `block{s}.{j}.*`, `norm.*`, `cls_token`, `head.*`.
 */
export class PyramidVisionTransformer extends Backbone {
  readonly patchEmbeds: PatchEmbed[] = [];
  readonly posEmbeds: Parameter[] = [];
  readonly blocks: PvtBlock[][] = [];
  readonly norm: LayerNorm;
  readonly clsToken: Parameter;
  head: Linear | Identity;
  readonly featureInfo: FeatureInfo[];
  readonly numFeatures: number;
  numClasses: number;
  readonly inChans: number;
  readonly cfg: ResolvedPvtConfig;
  /** `[H, W]` grid each stage's position embedding is stored for (the reference's `patch_embed{s}.H/W`). */
  readonly posGrids: [number, number][] = [];

  constructor(config: PvtConfig = {}) {
    super();
    const cfg = resolvePvtConfig(config);
    this.cfg = cfg;
    this.config = { ...cfg };
    this.family = 'pvt';
    const n = cfg.numStages;
    check(
      n === 4,
      () =>
        `numStages = ${n} is not supported: PVT's final norm and class token have the width of the fourth stage ` +
        '(embedDims[3]), so numStages must be 4',
    );
    for (const [name, v] of [
      ['embedDims', cfg.embedDims],
      ['numHeads', cfg.numHeads],
      ['mlpRatios', cfg.mlpRatios],
      ['depths', cfg.depths],
      ['srRatios', cfg.srRatios],
    ] as const) {
      check(Array.isArray(v) && v.length === n, () => `${name} must list one value per stage (${n}), got ${JSON.stringify(v)}`);
    }
    const [imgH, imgW] = Array.isArray(cfg.imgSize) ? cfg.imgSize : [cfg.imgSize, cfg.imgSize];
    check(
      [imgH, imgW].every((s) => Number.isInteger(s) && s > 0),
      () => `imgSize must be a positive integer (or [H, W]), got ${JSON.stringify(cfg.imgSize)}`,
    );
    const p = cfg.patchSize;
    check(Number.isInteger(p) && p > 0, () => `patchSize must be a positive integer, got ${p}`);
    for (let i = 0; i < n; i++) {
      check(Number.isInteger(cfg.depths[i]) && cfg.depths[i] > 0, () => `depths[${i}] must be a positive integer, got ${cfg.depths[i]}`);
      check(
        Number.isInteger(cfg.numHeads[i]) && cfg.numHeads[i] > 0 && cfg.embedDims[i] % cfg.numHeads[i] === 0,
        () => `numHeads[${i}] = ${cfg.numHeads[i]} does not divide embedDims[${i}] = ${cfg.embedDims[i]}`,
      );
      check(
        Number.isInteger(cfg.srRatios[i]) && cfg.srRatios[i] >= 1,
        () => `srRatios[${i}] must be a positive integer, got ${cfg.srRatios[i]}`,
      );
    }
    check(
      cfg.srRatios[n - 1] === 1,
      () =>
        `srRatios[${n - 1}] = ${cfg.srRatios[n - 1]}: the last stage attends over its class token and patches as one ` +
        'sequence, so its srRatio must be 1',
    );
    this.inChans = cfg.inChans;
    this.numClasses = cfg.featuresOnly ? 0 : cfg.numClasses;
    this.numFeatures = cfg.embedDims[n - 1];

    const dpr = dropPathRates(cfg.dropPathRate, cfg.depths);
    const stageLists: ModuleList<PvtBlock>[] = [];
    for (let i = 0; i < n; i++) {
      // the reference builds stage i's PatchEmbed for img_size // 2^(i+1) with patch 2
      const k = i === 0 ? p : 2;
      const grid: [number, number] =
        i === 0
          ? [Math.floor(imgH / p), Math.floor(imgW / p)]
          : [Math.floor(Math.floor(imgH / 2 ** (i + 1)) / 2), Math.floor(Math.floor(imgW / 2 ** (i + 1)) / 2)];
      this.posGrids.push(grid);
      const inC = i === 0 ? this.inChans : cfg.embedDims[i - 1];
      this.patchEmbeds.push(
        this.addModule(
          `patch_embed${i + 1}`,
          new PatchEmbed({ patchSize: k, inChans: inC, embedDim: cfg.embedDims[i], norm: true, normEps: 1e-5 }),
        ),
      );
      const rows = grid[0] * grid[1] + (i === n - 1 ? 1 : 0);
      this.posEmbeds.push(this.addParameter(`pos_embed${i + 1}`, truncNormal([1, rows, cfg.embedDims[i]], 0.02)));
      const list = this.addModule(`block${i + 1}`, new ModuleList<PvtBlock>());
      stageLists.push(list);
      const blocks: PvtBlock[] = [];
      for (let j = 0; j < cfg.depths[i]; j++) {
        blocks.push(
          list.push(
            new PvtBlock({
              dim: cfg.embedDims[i],
              numHeads: cfg.numHeads[i],
              mlpRatio: cfg.mlpRatios[i],
              srRatio: cfg.srRatios[i],
              qkvBias: cfg.qkvBias,
              qkScale: cfg.qkScale,
              drop: cfg.dropRate,
              attnDrop: cfg.attnDropRate,
              dropPath: dpr[i][j] ?? 0,
              normEps: cfg.normEps,
            }),
          ),
        );
      }
      this.blocks.push(blocks);
    }
    this.norm = this.addModule('norm', new LayerNorm(this.numFeatures, cfg.normEps));
    this.clsToken = this.addParameter('cls_token', truncNormal([1, 1, this.numFeatures], 0.02));
    this.head = this.addModule('head', this.makeHead(this.numClasses));
    this.featureInfo = cfg.embedDims.map((d, i) => ({ numChs: d, reduction: p * 2 ** i, module: `block${i + 1}` }));
    this.initFeatures(cfg);
    this.config.outIndices = [...this.outIndices];
  }

  private makeHead(numClasses: number): Linear | Identity {
    return numClasses > 0 ? new Linear(this.numFeatures, numClasses) : new Identity();
  }

  /** Token grid of each stage for an `h x w` input (every patch embedding floors, as a strided conv). */
  stageGrids(h: number, w: number): [number, number][] {
    const out: [number, number][] = [];
    let g: [number, number] = [Math.floor(h / this.cfg.patchSize), Math.floor(w / this.cfg.patchSize)];
    for (let i = 0; i < this.cfg.numStages; i++) {
      if (i > 0) g = [Math.floor(g[0] / 2), Math.floor(g[1] / 2)];
      out.push(g);
    }
    return out;
  }

  checkInput(x: tf.Tensor): void {
    const [h, w] = this.checkImageBatch(x);
    const grids = this.stageGrids(h, w);
    grids.forEach(([gh, gw], i) => {
      const r = this.cfg.srRatios[i];
      check(
        gh >= r && gw >= r && gh > 0 && gw > 0,
        () =>
          `a ${h}x${w} input gives stage ${i} a ${gh}x${gw} token grid, smaller than ${r > 1 ? `its srRatio ${r}` : 'one token'}: ` +
          `the input must be at least ${this.cfg.patchSize * 2 ** i * r} pixels on each side`,
      );
      const n1 = this.posGrids[0][0] * this.posGrids[0][1];
      const stored = this.posGrids[i][0] * this.posGrids[i][1];
      check(
        gh * gw !== n1 || stored === n1,
        () =>
          `a ${h}x${w} input gives stage ${i} ${gh}x${gw} = ${n1} tokens, as many as stage 0 has at imgSize, so the reference ` +
          `adds pos_embed${i + 1} (${stored} rows) unresized and fails; build the model with another imgSize`,
      );
    });
  }

  /**
   * Stage `i`'s position embedding for a `h x w` grid (the reference's `_get_pos_embed`): the stored
   * table when `h * w` equals stage 0's stored token count, else the stored grid resized bilinearly
   * (align_corners false, no antialias); the last stage's class-token row is kept and prepended.
   */
  stagePosEmbed(i: number, h: number, w: number): tf.Tensor3D {
    return tf.tidy(() => {
      const last = i === this.cfg.numStages - 1;
      const table = this.posEmbeds[i].value as tf.Tensor3D;
      const c = table.shape[2];
      const patches = last ? table.slice([0, 1, 0], [1, -1, c]) : table;
      const [sh, sw] = this.posGrids[i];
      let pos: tf.Tensor = patches;
      if (h * w !== this.posGrids[0][0] * this.posGrids[0][1] && (sh !== h || sw !== w)) {
        pos = interpolateNhwc(patches.reshape([1, sh, sw, c]), [h, w], { mode: 'bilinear' }).reshape([1, h * w, c]);
      }
      return (last ? tf.concat([table.slice([0, 0, 0], [1, 1, c]), pos], 1) : pos) as tf.Tensor3D;
    });
  }

  /**
   * Stage `i` on its input (the image for stage 0, else the previous stage's NHWC map): patch
   * embedding, class token (last stage), position embedding, blocks. Returns the NHWC map, or for the
   * last stage the sequence `[B, 1 + H*W, C]` and its grid.
   */
  runStage(i: number, x: tf.Tensor, opts: ForwardOptions = {}): { y: tf.Tensor; grid: [number, number] } {
    const training = opts.training ?? false;
    let grid: [number, number] = [0, 0];
    const y = tf.tidy(() => {
      const k = this.patchEmbeds[i].opts.patchSize;
      const [b, h, w] = x.shape;
      const hk = Math.floor(h / k) * k;
      const wk = Math.floor(w / k) * k;
      const xi = hk !== h || wk !== w ? x.slice([0, 0, 0, 0], [b, hk, wk, -1]) : x;
      const e = this.patchEmbeds[i].forward(xi);
      const [, gh, gw, c] = e.shape;
      grid = [gh, gw];
      const last = i === this.cfg.numStages - 1;
      let t: tf.Tensor = last
        ? tf.concat([tf.tile(this.clsToken.value, [b, 1, 1]), e.reshape([b, gh * gw, c])], 1).reshape([b, 1, 1 + gh * gw, c])
        : e;
      t = tf.add(t, this.stagePosEmbed(i, gh, gw).reshape(last ? [1, 1, 1 + gh * gw, c] : [1, gh, gw, c]));
      t = dropout(t, this.cfg.dropRate, training);
      for (const blk of this.blocks[i]) t = maybeCheckpoint(this.gradCheckpointing, opts, blk, t, (u) => blk.forward(u, opts));
      return last ? t.reshape([b, 1 + gh * gw, c]) : t;
    });
    return { y, grid };
  }

  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    this.checkInput(x);
    return tf.tidy(() => {
      let y = x;
      for (let i = 0; i < this.cfg.numStages; i++) y = this.runStage(i, y, opts).y;
      return this.norm.forward(y) as tf.Tensor3D;
    });
  }

  /** The class token of the normalised sequence (`preLogits`), or the classifier applied to it. */
  forwardHead(x: tf.Tensor, opts: ForwardOptions & { preLogits?: boolean } = {}): tf.Tensor2D {
    check(x.rank === 3, () => `forwardHead expects the [B, 1 + H*W, C] sequence of forwardFeatures, got shape [${x.shape.join(', ')}]`);
    return tf.tidy(() => {
      const [b, , c] = (x as tf.Tensor3D).shape;
      const cls = x.slice([0, 0, 0], [-1, 1, -1]).reshape([b, c]) as tf.Tensor2D;
      if (opts.preLogits) return cls;
      return this.head.forward(cls) as tf.Tensor2D;
    });
  }

  protected intermediateSteps(_x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps {
    const last = this.cfg.numStages - 1;
    let lastGrid: [number, number] = [0, 0];
    return {
      numLevels: this.cfg.numStages,
      stem: (x) => x.clone(),
      level: (i, y) => {
        const r = this.runStage(i, y, opts);
        if (i === last) lastGrid = r.grid;
        return r.y;
      },
      output: (i, y) => {
        if (i !== last) return y.clone() as tf.Tensor4D;
        return tf.tidy(() => {
          const s = opts.norm ? this.norm.forward(y) : y;
          const [b, , c] = s.shape;
          return s.slice([0, 1, 0], [b, -1, c]).reshape([b, lastGrid[0], lastGrid[1], c]) as tf.Tensor4D;
        });
      },
      final: (y) => this.norm.forward(y),
    };
  }

  resetClassifier(numClasses: number): void {
    this.numClasses = numClasses;
    this.head = this.replaceModule('head', this.makeHead(numClasses));
  }

  /** The official `no_weight_decay`: the class token. */
  override noWeightDecay(): string[] {
    return ['cls_token'];
  }

  /**
   * Parameter groups for layer-wise decay: the first patch embedding and position embedding form the
   * stem; stage `s`'s patch embedding and position embedding join its first block (the class token
   * the last stage's), the final norm the last group.
   */
  groupMatcher(coarse = false): GroupMatcher {
    const n = this.cfg.numStages;
    return {
      stem: '^(?:patch_embed1\\.|pos_embed1$)',
      blocks: coarse
        ? [
            // the official names count stages from 1; a coarse group is the stage's level (0-based)
            ...Array.from({ length: n }, (_, i): [string, number[]] => [`^(?:patch_embed|pos_embed|block)${i + 1}(?:\\.|$)`, [i]]),
            ['^cls_token', [n - 1]],
            ['^norm\\.', [99999]],
          ]
        : [
            ['^(?:patch_embed|pos_embed)(\\d+)', [0]],
            ['^block(\\d+)\\.(\\d+)', null],
            ['^cls_token', [n, 0]],
            ['^norm\\.', [99999]],
          ],
    };
  }

  /**
   * Adapt a checkpoint stored for another `imgSize`: each `pos_embed{s}` is resized to this model's
   * stored grid exactly as the reference resizes it at run time (bilinear, align_corners false; the
   * class-token row kept). Square tables only, as the reference stores them.
   */
  override checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const created: tf.Tensor[] = [];
    const out: Record<string, tf.Tensor> = { ...sd };
    for (let i = 0; i < this.cfg.numStages; i++) {
      const key = `pos_embed${i + 1}`;
      const v = sd[key] as tf.Tensor3D | undefined;
      const want = (this.posEmbeds[i].value as tf.Tensor3D).shape;
      if (!v || v.rank !== 3 || v.shape[2] !== want[2] || v.shape[1] === want[1]) continue;
      const last = i === this.cfg.numStages - 1;
      const rows = v.shape[1] - (last ? 1 : 0);
      const side = Math.round(Math.sqrt(rows));
      if (side * side !== rows) continue;
      const [gh, gw] = this.posGrids[i];
      const c = want[2];
      const r = tf.tidy(() => {
        const patches = last ? v.slice([0, 1, 0], [1, -1, c]) : v;
        const pos = interpolateNhwc(patches.reshape([1, side, side, c]), [gh, gw], { mode: 'bilinear' }).reshape([1, gh * gw, c]);
        return last ? tf.concat([v.slice([0, 0, 0], [1, 1, c]), pos], 1) : pos;
      });
      out[key] = r;
      created.push(r);
    }
    return { sd: out, created };
  }
}

/** Build a PVT v1 (the official `PyramidVisionTransformer`). */
export function pvt(config: PvtConfig = {}): PyramidVisionTransformer {
  return new PyramidVisionTransformer(config);
}
