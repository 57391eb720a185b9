import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { isTensor, LevelInfo } from '../heads/featureChecks.js';
import { ClassifierHead } from '../layers/classifier.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions, Module } from '../layers/module.js';
import type { Backbone, FeatureInfo } from '../models/backbone.js';
import { runWithAdapters, StageAdapters } from '../transfer/adapter.js';

/** What a head takes: the backbone's `forwardFeatures` output, one NHWC map, or the list of maps. */
export type HeadInputKind = 'features' | 'map' | 'maps';

/** The optional hooks a head or neck may offer to {@link attach}. */
export interface HeadLike extends Module {
  inputKind?: HeadInputKind;
  segmentation?: boolean;
  inStride?: number;
  checkLevelInfo?(info: LevelInfo[]): void;
  outLevelInfo?(info: LevelInfo[]): LevelInfo[];
}

/** Options of {@link attach}. */
export interface AttachOptions {
  /**
   * Backbone levels (indices into `featureInfo`, negative from the end) fed to a 'map' / 'maps' head or
   * neck. Default: for one map, the last level at the head's `inStride` (or the last level); for a list,
   * the backbone's `outIndices`.
   */
  indices?: number[];
  /** A neck between backbone and head (a {@link SimpleFeaturePyramid} or {@link FPN}); its output feeds the head. */
  neck?: Module;
  /** Adapters inserted after the backbone's stages (see `stageAdapters`). */
  adapters?: StageAdapters;
  /** How the head is fed, for a head that does not declare `inputKind` (ClassifierHead: 'features'). */
  headInput?: HeadInputKind;
  /** Resize segmentation logits bilinearly to the input image size (default true). */
  resizeToInput?: boolean;
}

function kindOf(m: HeadLike, fallback?: HeadInputKind): HeadInputKind {
  if (m.inputKind) return m.inputKind;
  if (m instanceof ClassifierHead) return 'features';
  if (fallback) return fallback;
  throw new VisBackbonesError(`attach: cannot tell how to feed ${m.constructor.name}; pass headInput: 'features' | 'map' | 'maps'`);
}

/**
 * A backbone and a head run as one Module (optionally with a neck between them and adapters inside the
 * backbone). `forward(x)` takes the NHWC image batch; the state dict nests `backbone.*`, `neck.*`,
 * `adapters.*`, `head.*`. A backbone without trainable parameters (frozen) always runs in eval mode.
 */
export class AttachedModel extends Module {
  readonly backbone: Backbone;
  readonly neck: HeadLike | null;
  readonly adapters: StageAdapters | null;
  readonly head: HeadLike;
  /** Backbone levels taken (for 'map' / 'maps' inputs). */
  readonly indices: number[];
  readonly backboneInput: HeadInputKind;
  /** Channels and strides of what reaches the head (for 'map' / 'maps' inputs). */
  readonly headLevels: LevelInfo[];

  constructor(
    backbone: Backbone,
    head: Module,
    readonly opts: AttachOptions = {},
  ) {
    super();
    this.config = { ...opts };
    this.backbone = this.addModule('backbone', backbone);
    this.neck = opts.neck ? this.addModule('neck', opts.neck as HeadLike) : null;
    this.adapters = opts.adapters ? this.addModule('adapters', opts.adapters) : null;
    this.head = this.addModule('head', head as HeadLike);
    const info = backbone.featureInfo;
    const headKind = kindOf(this.head, opts.headInput);
    if (this.neck)
      check(
        headKind === 'maps',
        () => `attach: with a neck the head must take the list of maps, but ${head.constructor.name} takes '${headKind}'`,
      );
    this.backboneInput = this.neck ? kindOf(this.neck) : headKind;
    if (this.adapters) {
      check(
        this.adapters.modules.length === info.length &&
          this.adapters.modules.every((m, i) => m === info[i].module && this.adapters!.channels[i] === info[i].numChs),
        () =>
          `attach: the adapters were built for levels [${this.adapters!.modules.join(', ')}], not this backbone's [${info.map((l) => l.module).join(', ')}]`,
      );
    }
    const first = (this.neck ?? this.head) as HeadLike;
    this.indices = this.pickIndices(info, first);
    let levels: LevelInfo[] = this.indices.map((i) => ({ numChs: info[i].numChs, reduction: info[i].reduction }));
    if (this.backboneInput !== 'features') first.checkLevelInfo?.(levels);
    if (this.neck) {
      check(
        typeof this.neck.outLevelInfo === 'function',
        () => `attach: neck ${this.neck!.constructor.name} does not describe its outputs (outLevelInfo)`,
      );
      levels = this.neck.outLevelInfo!(levels);
      this.head.checkLevelInfo?.(levels);
    }
    this.headLevels = this.backboneInput === 'features' ? [] : levels;
  }

  private pickIndices(info: FeatureInfo[], first: HeadLike): number[] {
    const n = info.length;
    if (this.opts.indices) {
      return this.opts.indices.map((i) => {
        const j = i < 0 ? n + i : i;
        check(Number.isInteger(i) && j >= 0 && j < n, () => `attach: level index ${i} is out of range for the backbone's ${n} levels`);
        return j;
      });
    }
    if (this.backboneInput === 'map') {
      const stride = first.inStride;
      if (stride === undefined) return [n - 1];
      const at = info.map((l, i) => (l.reduction === stride ? i : -1)).filter((i) => i >= 0);
      check(
        at.length > 0,
        () =>
          `attach: ${first.constructor.name} takes a stride-${stride} map but the backbone's levels have strides [${info.map((l) => l.reduction).join(', ')}]`,
      );
      return [at[at.length - 1]];
    }
    return this.backbone.outIndices.length ? this.backbone.outIndices.slice() : info.map((_, i) => i);
  }

  private runBackbone(x: tf.Tensor, opts: ForwardOptions): tf.Tensor | tf.Tensor4D[] {
    const training = (opts.training ?? false) && this.backbone.trainableVariables().length > 0;
    const run = () =>
      this.backboneInput === 'features'
        ? this.backbone.forwardFeatures(x, { training })
        : this.backbone.forwardIntermediates(x, { training, indices: this.indices, intermediatesOnly: true, stopEarly: true });
    if (!this.adapters) return run();
    const last = this.backboneInput === 'features' ? this.adapters.adapters.length - 1 : Math.max(...this.indices);
    return runWithAdapters(this.backbone, this.adapters, run, last);
  }

  /** `x` NHWC images -> the head's output (segmentation logits resized to the input size by default). */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      const feats = this.runBackbone(x, opts);
      let input: tf.Tensor | tf.Tensor[] = this.backboneInput === 'map' ? (feats as tf.Tensor4D[])[0] : feats;
      if (this.neck) input = this.neck.forward(input, opts) as tf.Tensor4D[];
      const out = this.head.forward(input, opts) as tf.Tensor | tf.Tensor[];
      if (this.head.segmentation && (this.opts.resizeToInput ?? true) && isTensor(out)) {
        return interpolateNhwc(out, [x.shape[1] as number, x.shape[2] as number], { mode: 'bilinear' });
      }
      return out;
    });
  }
}

/**
 * Compose a backbone and a head (and optionally a neck and stage adapters) into one Module whose
 * state dict nests `backbone.*` and `head.*`. Channels and strides of the backbone's levels are checked
 * against the head's configuration here, with an error naming both. The model owns (and disposes) its parts.
 */
export function attach(backbone: Backbone, head: Module, opts: AttachOptions = {}): AttachedModel {
  return new AttachedModel(backbone, head, opts);
}
