import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { dropout, dropPathRates } from '../../layers/dropPath.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import type { GroupMatcher } from '../groupMatcher.js';
import { BasicLayer3D } from './basicLayer3d.js';
import { inflateBiasTable, inflatePatchKernel, resizeBiasTable3d, stripVideoPrefixes, swinDownsampleToEnd } from './checkpoint.js';
import { ResolvedVideoSwinConfig } from './config.js';
import { PatchEmbed3D } from './patchEmbed3d.js';
import type { Triple } from './windows3d.js';

/** One stage map of a video backbone (timm's `feature_info` with a `[t, h, w]` reduction). */
export interface VideoFeatureInfo {
  /** Channels of the map. */
  numChs: number;
  /** Stride relative to the clip along `[t, h, w]`. */
  reduction: Triple;
  /** State-dict prefix of the stage (`'layers.2'`). */
  module: string;
}

/**
 * The trunk Video Swin and BEVT share: `patch_embed` (Conv3d), the `layers` (3-D Swin stages with
 * patch merging at their end), the final `norm`, and the loading rules of the official code. Clips
 * are NTHWC `[B, T, H, W, C]`.
 */
export abstract class VideoSwinTrunk extends Module {
  readonly cfg: ResolvedVideoSwinConfig;
  readonly patchEmbed: PatchEmbed3D;
  readonly layers: ModuleList<BasicLayer3D>;
  readonly norm: LayerNorm;
  /** Width of the last stage. */
  readonly numFeatures: number;
  readonly featureInfo: VideoFeatureInfo[];
  readonly inChans: number;
  /** No classifier in the backbone (mmaction's I3D head is separate). */
  readonly numClasses = 0;
  featuresOnly: boolean;
  outIndices: number[];
  /** Classifier prefixes of reference checkpoints, skipped when loading. */
  headPrefixes = ['cls_head.', 'head.'];

  constructor(cfg: ResolvedVideoSwinConfig) {
    super();
    this.cfg = cfg;
    this.config = { ...cfg };
    this.inChans = cfg.inChans;
    this.featuresOnly = cfg.featuresOnly;
    this.outIndices = cfg.outIndices;
    const eps = cfg.normEps;
    this.patchEmbed = this.addModule(
      'patch_embed',
      new PatchEmbed3D({ patchSize: cfg.patchSize, inChans: cfg.inChans, embedDim: cfg.embedDim, norm: cfg.patchNorm, normEps: eps }),
    );
    const dpr = dropPathRates(cfg.dropPathRate, cfg.depths);
    const n = cfg.depths.length;
    this.layers = this.addModule('layers', new ModuleList<BasicLayer3D>());
    this.featureInfo = [];
    for (let i = 0; i < n; i++) {
      const dim = cfg.embedDim * 2 ** i;
      this.layers.push(
        new BasicLayer3D({
          dim,
          depth: cfg.depths[i],
          numHeads: cfg.numHeads[i],
          windowSize: cfg.windowSize,
          mlpRatio: cfg.mlpRatio,
          qkvBias: cfg.qkvBias,
          qkScale: cfg.qkScale,
          drop: cfg.dropRate,
          attnDrop: cfg.attnDropRate,
          dropPath: dpr[i],
          downsample: i < n - 1,
          normEps: eps,
        }),
      );
      const [pt, ph, pw] = cfg.patchSize;
      this.featureInfo.push({ numChs: dim, reduction: [pt, ph * 2 ** i, pw * 2 ** i], module: `layers.${i}` });
    }
    this.numFeatures = cfg.embedDim * 2 ** (n - 1);
    this.norm = this.addModule('norm', new LayerNorm(this.numFeatures, eps));
  }

  /**
   * timm's `set_grad_checkpointing`: a training forward keeps only each block's input and recomputes the
   * block in the backward pass (less memory, the same gradients).
   */
  setGradCheckpointing(enable = true): void {
    for (const l of this.layers.items) l.gradCheckpointing = enable;
  }

  /** Check an NTHWC clip. */
  checkInput(x: tf.Tensor): void {
    check(x.rank === 5, () => `expected an NTHWC clip batch [B, T, H, W, ${this.inChans}], got shape [${x.shape.join(', ')}]`);
    const c = x.shape[4];
    check(
      c === this.inChans,
      () => `expected ${this.inChans} input channels (NTHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`,
    );
  }

  /** Patch embedding (+ dropout): `[B, T, H, W, C]` -> `[B, D, h, w, embedDim]`. */
  protected embed(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor5D {
    return tf.tidy(() => dropout(this.patchEmbed.forward(x), this.cfg.dropRate, opts.training ?? false) as tf.Tensor5D);
  }

  /** Run the stages on embedded tokens up to `last`, returning every stage's output (before merging). */
  protected runStages(x: tf.Tensor5D, opts: ForwardOptions = {}, last = this.layers.length - 1): tf.Tensor5D[] {
    return tf.tidy(() => {
      const outs: tf.Tensor5D[] = [];
      let y = x;
      for (let i = 0; i <= last; i++) {
        const r = this.layers.items[i].forward(y, opts);
        outs.push(r.out);
        y = r.down;
      }
      return outs;
    });
  }

  /** timm's `no_weight_decay`: the relative-position bias tables. */
  noWeightDecay(): string[] {
    return this.namedParameters()
      .map(([n]) => n)
      .filter((n) => n.endsWith('relative_position_bias_table'));
  }

  /** timm's Swin `group_matcher` (patch embedding, then stages or blocks, merging with the stage's last block). */
  groupMatcher(coarse = false): GroupMatcher {
    return {
      stem: '^patch_embed',
      blocks: coarse
        ? '^layers\\.(\\d+)'
        : [
            ['^layers\\.(\\d+)\\.downsample', [99999]],
            ['^layers\\.(\\d+)\\.\\w+\\.(\\d+)', null],
            ['^norm', [99999]],
          ],
    };
  }

  /** Config-derived buffers of the reference files (recomputed, skipped when loading). */
  derivedBuffers(): RegExp[] {
    return [/(^|\.)relative_position_index$/, /(^|\.)attn_mask$/];
  }

  /**
   * The official loaders: prefixes stripped, a 2-D Swin checkpoint (4-D `patch_embed.proj.weight`)
   * inflated (kernel repeated over time / pt, bias tables resized and tiled), a 3-D checkpoint of
   * another window (`pretrainedWindowSize`, or inferred when only the temporal window differs) resized
   * trilinearly.
   */
  checkpointFilter(sd0: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    const created: tf.Tensor[] = [];
    let sd = stripVideoPrefixes(sd0);
    for (const k of Object.keys(sd)) if (k.includes('encoder_k.')) delete sd[k];
    const pe = sd['patch_embed.proj.weight'];
    const window = this.cfg.windowSize;
    const own = new Map(this.namedParameters().map(([n, p]) => [n, p.torchShape]));
    if (pe && pe.rank === 4) {
      sd = swinDownsampleToEnd(sd);
      if (sd['fc_norm.weight'] && !sd['norm.weight']) {
        sd['norm.weight'] = sd['fc_norm.weight'];
        sd['norm.bias'] = sd['fc_norm.bias'];
        delete sd['fc_norm.weight'];
        delete sd['fc_norm.bias'];
      }
      this.inflateExtras(sd);
      const inflated = inflatePatchKernel(pe, this.cfg.patchSize[0]);
      created.push(inflated);
      sd['patch_embed.proj.weight'] = inflated;
      for (const k of Object.keys(sd)) {
        if (!k.endsWith('relative_position_bias_table') || sd[k].rank !== 2) continue;
        const want = own.get(k);
        if (want && want[1] !== sd[k].shape[1]) continue; // heads differ: left for the loader to report
        const t = inflateBiasTable(sd[k], window);
        created.push(t);
        sd[k] = t;
      }
      return { sd, created };
    }
    for (const k of Object.keys(sd)) {
      if (!k.endsWith('relative_position_bias_table')) continue;
      const want = own.get(k);
      const [l1, h1] = sd[k].shape;
      if (!want || want[0] === l1 || want[1] !== h1) continue;
      const from = this.pretrainedWindow(l1);
      if (!from) continue;
      const t = resizeBiasTable3d(sd[k], from, window);
      created.push(t);
      sd[k] = t;
    }
    return { sd, created };
  }

  /** The window a 3-D table of `rows` rows was trained with: `pretrainedWindowSize`, or the temporal window it implies. */
  private pretrainedWindow(rows: number): Triple | null {
    if (this.cfg.pretrainedWindowSize) return this.cfg.pretrainedWindowSize;
    const [, wh, ww] = this.cfg.windowSize;
    const plane = (2 * wh - 1) * (2 * ww - 1);
    if (rows % plane !== 0 || (rows / plane) % 2 !== 1) return null;
    return [(rows / plane + 1) / 2, wh, ww];
  }

  /** Extra renames of a 2-D checkpoint before inflation (BEVT copies the patch embedding to its image stream). */
  protected inflateExtras(sd: Record<string, tf.Tensor>): void {
    void sd;
  }
}
