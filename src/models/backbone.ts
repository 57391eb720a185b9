import type { TimmPretrainedCfg } from '../data/pretrainedCfgs.js';
import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { ForwardOptions, Module } from '../layers/module.js';
import { checkpoint } from './checkpoint.js';
import type { GroupMatcher } from './groupMatcher.js';

/** One feature level of a backbone (timm's `feature_info`). */
export interface FeatureInfo {
  /** Channels of the map. */
  numChs: number;
  /** Stride relative to the input. */
  reduction: number;
  /** State-dict prefix of the module that produces it (`'layers.2'`). */
  module: string;
}

/** Options of `forwardIntermediates` (timm's `forward_intermediates`). */
export interface ForwardIntermediatesOptions extends ForwardOptions {
  /** Last n levels (number) or explicit level indices (negative count from the end). Default: all. */
  indices?: number | number[];
  /** Apply the final norm to the intermediates (timm's `norm`). */
  norm?: boolean;
  /** Stop running blocks after the last requested level. */
  stopEarly?: boolean;
  /** Return only the list of intermediates. */
  intermediatesOnly?: boolean;
}

/** The arguments every backbone config accepts besides its architecture. */
export interface BackboneCommonConfig {
  /** Input channels (default 3). */
  inChans?: number;
  /** Classes of the classifier; 0 = no head (`forward` returns pooled features). Default 1000. */
  numClasses?: number;
  /** `forward(x)` returns the stage feature maps (NHWC). */
  featuresOnly?: boolean;
  /** Which levels `featuresOnly` returns (negative count from the end). Default: all. */
  outIndices?: number[];
  /** Head pooling ('avg', 'token', ...). */
  globalPool?: string;
  dropRate?: number;
  dropPathRate?: number;
}

/** timm's `feature_take_indices`: the levels to take and the largest of them. */
export function featureTakeIndices(numLevels: number, indices?: number | number[]): { take: number[]; maxIndex: number } {
  let take: number[];
  if (indices === undefined) take = Array.from({ length: numLevels }, (_, i) => i);
  else if (typeof indices === 'number') {
    check(indices > 0 && indices <= numLevels, () => `indices=${indices}: expected 1..${numLevels} last levels`);
    take = Array.from({ length: indices }, (_, i) => numLevels - indices + i);
  } else {
    take = indices.map((i) => {
      const j = i < 0 ? numLevels + i : i;
      check(Number.isInteger(i) && j >= 0 && j < numLevels, () => `level index ${i} is out of range for ${numLevels} levels`);
      return j;
    });
  }
  return { take, maxIndex: Math.max(...take) };
}

/**
 * The family-specific parts of {@link Backbone.forwardIntermediates}: timm's `forward_intermediates`
 * runs a stem, then the levels in order, collecting the outputs of the requested ones.
 */
export interface IntermediateSteps<T extends tf.Tensor = tf.Tensor> {
  /** Number of feature levels (stages, or blocks of an isotropic model). */
  numLevels: number;
  /** Input images -> the first level's input (patch embedding, stem). */
  stem(x: tf.Tensor): T;
  /** Runs level `i` on the previous level's output. */
  level(i: number, y: T): T;
  /** Level `i`'s output `y` as a new NHWC map (with the final norm where `norm` asks for it). */
  output(i: number, y: T): tf.Tensor4D;
  /**
   * The trunk output after every level ran (`forwardFeatures`' result: final norm, neck). When the run
   * stopped early it is not called: the trunk output is then the last level's output as it is.
   */
  final(y: T): tf.Tensor;
}

/**
 * The interface every backbone shares (timm's): `forward`, `forwardFeatures`, `forwardHead`,
 * `forwardIntermediates`, `featureInfo`, `resetClassifier`, with `featuresOnly` / `outIndices`.
 */
export abstract class Backbone extends Module {
  /** One entry per feature level (stage, or block for isotropic models). */
  abstract readonly featureInfo: FeatureInfo[];
  /** Width of the pooled features. */
  abstract readonly numFeatures: number;
  /** Classes of the head (0 = none). */
  abstract numClasses: number;
  /** Input channels. */
  abstract readonly inChans: number;
  /** The family's registry name (`'swin'`, `'swinv2'`, ...): with `config` it rebuilds the model. */
  family = '';
  /** When true, `forward` returns the feature maps of `outIndices`. */
  featuresOnly = false;
  /** Levels returned by `featuresOnly` (normalised, non-negative). */
  outIndices: number[] = [];
  /** The resolved config (defaults applied): `getFamily(family).create(config)` rebuilds the model. */
  declare config: Record<string, unknown>;
  /**
   * The pretrained cfg of the name it was created from (timm's `model.pretrained_cfg`: input size, crop,
   * interpolation, mean/std, classes, hub id); set by `createModel`, null for a model built directly.
   */
  pretrainedCfg: (Partial<TimmPretrainedCfg> & Record<string, unknown>) | null = null;
  /** State-dict prefixes of the classifier, skipped when loading into a head-less model. */
  headPrefixes: string[] = ['head.'];
  /** Recompute each block in the backward pass instead of keeping its intermediates (see {@link setGradCheckpointing}). */
  protected gradCheckpointing = false;

  /**
   * timm's `set_grad_checkpointing`: when on, a training forward keeps only the inputs of each block (or
   * stage, as timm's model does) and recomputes the block in the backward pass: less memory, the same
   * gradients, one more forward per step. Also switches the submodules that carry a `gradCheckpointing` flag.
   */
  setGradCheckpointing(enable = true): void {
    this.gradCheckpointing = enable;
    for (const [, m] of this.namedModules()) if ('gradCheckpointing' in m) (m as { gradCheckpointing: boolean }).gradCheckpointing = enable;
  }

  /** Whether {@link setGradCheckpointing} is on (timm's `model.grad_checkpointing`). */
  isGradCheckpointing(): boolean {
    return this.gradCheckpointing;
  }

  /** `fn(...inputs)`, recomputed in the backward pass (gradients also for the trainable variables of `modules`). */
  protected checkpointed(fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], modules: Module[]): tf.Tensor {
    return checkpoint(fn, inputs, modules);
  }

  /**
   * timm's `group_matcher(coarse)`: parameter name -> (stage, block) ordinal, for layer-wise learning-rate
   * decay and freezing the first stages; `coarse` groups whole stages rather than blocks.
   */
  abstract groupMatcher(coarse?: boolean): GroupMatcher;

  /** timm's `no_weight_decay()`: parameter names (fnmatch patterns) trained without weight decay. */
  noWeightDecay(): string[] {
    return [];
  }

  /**
   * Keys of buffers derived from the config (relative-position indices, attention masks, coordinate
   * tables) that reference checkpoints may hold: the loader skips them.
   */
  derivedBuffers(): RegExp[] {
    return [];
  }

  /** Features before the head, in the model's native layout (NHWC map or tokens). */
  abstract forwardFeatures(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor;
  /** Pooling + classifier; `preLogits` returns the pooled features. */
  abstract forwardHead(x: tf.Tensor, opts?: ForwardOptions & { preLogits?: boolean }): tf.Tensor2D;
  /** Replace the classifier (0 removes it). */
  abstract resetClassifier(numClasses: number, globalPool?: string): void;
  /** Validate an input batch, throwing a clear error. */
  abstract checkInput(x: tf.Tensor): void;
  /** The stem, levels and outputs of {@link forwardIntermediates} for a checked input `x`. */
  protected abstract intermediateSteps(x: tf.Tensor, opts: ForwardIntermediatesOptions): IntermediateSteps;

  /**
   * The checks every backbone's `checkInput` starts with: `x` is an NHWC batch `[B, H, W, inChans]`.
   * Returns `[H, W]`.
   */
  protected checkImageBatch(x: tf.Tensor): [number, number] {
    this.checkRunnable(x);
    check(x.rank === 4, () => `expected an NHWC image batch [B, H, W, ${this.inChans}], got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    check(c === this.inChans, () => `expected ${this.inChans} input channels (NHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`);
    check(b > 0 && h > 0 && w > 0, () => `expected a non-empty image batch, got shape [${x.shape.join(', ')}]`);
    return [h, w];
  }

  /**
   * The checks before any run: the model is not disposed and `x` is a float tensor. Integer / boolean
   * images (`tf.browser.fromPixels` gives int32 0..255) would give logits silently wrong.
   */
  protected checkRunnable(x: unknown): asserts x is tf.Tensor {
    check(
      !this.isDisposed,
      () => `this ${this.family || this.constructor.name} model was disposed (model.dispose()): build or load a new one`,
    );
    if (!(x instanceof tf.Tensor)) {
      const what = x === null || typeof x !== 'object' ? String(x) : Object.prototype.toString.call(x);
      throw new VisBackbonesError(
        `expected the input as a tf.Tensor (NHWC float32 batch), got ${what}: wrap it with tf.tensor4d(data, [B, H, W, C])`,
      );
    }
    check(!x.isDisposed, () => `the input tensor [${x.shape.join(', ')}] was already disposed`);
    check(
      x.dtype === 'float32',
      () =>
        `expected a float32 image batch, got ${x.dtype} (shape [${x.shape.join(', ')}]): normalise it first, e.g. ` +
        "x.toFloat().div(255) then subtract the model's mean and divide by its std, or use createTransform(resolveDataConfig(model))",
    );
  }

  /**
   * Run the trunk, collecting the outputs of the levels `indices` (default all) as NHWC maps (timm's
   * `forward_intermediates`). The same rules hold in every family:
   * - `stopEarly` or `intermediatesOnly`: no level after the last requested one runs; the maps equal
   *   those of the full run.
   * - `norm`: the final norm is applied to the maps where the family's reference applies it (the last
   *   level of a hierarchical model, every block of an isotropic one).
   * - unless `intermediatesOnly`, `[trunk, maps]` is returned: the trunk is `forwardFeatures`' result when
   *   every level ran, else the last run level's output as it is (no final norm: its width may differ).
   */
  forwardIntermediates(x: tf.Tensor, opts: ForwardIntermediatesOptions & { intermediatesOnly: true }): tf.Tensor4D[];
  forwardIntermediates(x: tf.Tensor, opts?: ForwardIntermediatesOptions): tf.Tensor4D[] | [tf.Tensor, tf.Tensor4D[]];
  forwardIntermediates(x: tf.Tensor, opts: ForwardIntermediatesOptions = {}): tf.Tensor4D[] | [tf.Tensor, tf.Tensor4D[]] {
    this.checkRunnable(x);
    this.checkInput(x);
    const steps = this.intermediateSteps(x, opts);
    const { take, maxIndex } = featureTakeIndices(steps.numLevels, opts.indices);
    const last = steps.numLevels - 1;
    const stopAt = opts.stopEarly || opts.intermediatesOnly ? maxIndex : last;
    const res = tf.tidy(() => {
      const inter: tf.Tensor[] = [];
      let y = steps.stem(x);
      for (let i = 0; i <= stopAt; i++) {
        y = steps.level(i, y);
        if (take.includes(i)) inter.push(steps.output(i, y));
      }
      if (opts.intermediatesOnly) return inter;
      return [stopAt === last ? steps.final(y) : y.clone(), ...inter];
    });
    if (opts.intermediatesOnly) return res as tf.Tensor4D[];
    return [res[0], res.slice(1) as tf.Tensor4D[]];
  }

  /**
   * Adapt a reference checkpoint to this model (timm's `checkpoint_filter_fn`): rename old layouts,
   * resize tables. Returns the new dict and the tensors it created (disposed by the loader).
   */
  checkpointFilter(sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
    return { sd, created: [] };
  }

  /** Set `featuresOnly` / `outIndices` from a config. */
  protected initFeatures(cfg: BackboneCommonConfig): void {
    this.featuresOnly = cfg.featuresOnly ?? false;
    this.outIndices = featureTakeIndices(this.featureInfo.length, cfg.outIndices).take;
  }

  /**
   * Logits `[B, numClasses]` (pooled features when `numClasses` is 0), or, for a `featuresOnly`
   * model, the NHWC feature maps of `outIndices` in level order.
   */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor | tf.Tensor4D[] {
    if (this.featuresOnly) return this.forwardFeatureMaps(x, opts);
    return this.forwardLogits(x, opts);
  }

  /** `forwardHead(forwardFeatures(x))`, typed as a single tensor. */
  forwardLogits(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    this.checkRunnable(x);
    return tf.tidy(() => this.forwardHead(this.forwardFeatures(x, opts), opts));
  }

  /** The NHWC maps of `outIndices` (what `featuresOnly` returns), typed as a list. */
  forwardFeatureMaps(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D[] {
    return this.forwardIntermediates(x, { ...opts, indices: this.outIndices, intermediatesOnly: true, stopEarly: true });
  }
}
