import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import type { Module } from '../layers/module.js';
import type { Backbone } from '../models/backbone.js';
import { GroupMatcher, groupWithMatcher } from '../models/groupMatcher.js';
import { defaultNoWeightDecay, noWeightDecayPatterns } from './weightDecay.js';

/**
 * The group matcher of a backbone (timm's `group_matcher(coarse)`, {@link Backbone.groupMatcher}), with a
 * clear error for a module that has none.
 */
export function groupMatcherOf(module: Module, coarse = false): GroupMatcher {
  const own = (module as Partial<Pick<Backbone, 'groupMatcher'>>).groupMatcher;
  check(
    typeof own === 'function',
    () => `${module.constructor.name} has no groupMatcher(coarse) method (every Backbone has one): pass a matcher for its parameters`,
  );
  return own.call(module, coarse);
}

function hasGroupMatcher(m: Module): boolean {
  return typeof (m as Partial<Pick<Backbone, 'groupMatcher'>>).groupMatcher === 'function';
}

/**
 * Where the backbone sits inside `model`: '' when `model` is one (or a matcher is given for it), else the
 * first child named `backbone` (an attached model) or `encoder` (a pretraining wrapper) that has a group
 * matcher.
 */
function defaultBackbonePrefix(model: Module, hasMatcher: boolean): string {
  if (hasMatcher || hasGroupMatcher(model)) return '';
  for (const name of ['backbone', 'encoder']) {
    const child = model.findSubmodule(name);
    if (child && hasGroupMatcher(child)) return `${name}.`;
  }
  return '';
}

/** Options of {@link paramGroupsLayerDecay} (timm's `param_groups_layer_decay` arguments). */
export interface ParamGroupsLayerDecayOptions {
  /** Per-layer learning-rate decay: layer `i` of `n` gets `layerDecay^(n - 1 - i)` (default 0.75). */
  layerDecay?: number;
  /** Weight decay of the decayed groups (default 0.05). */
  weightDecay?: number;
  /** Names (fnmatch patterns) without weight decay; default: the model's (see {@link noWeightDecayPatterns}). */
  noWeightDecayList?: string[];
  /** No weight decay for parameters with <= 1 dimension (biases, norms); default true. */
  weightDecayExclude1d?: boolean;
  /** Lower bound of the scale (default 0). */
  minScale?: number;
  /** Matcher for the backbone's parameters; default the backbone's own `groupMatcher(false)`. */
  matcher?: GroupMatcher;
  /**
   * Prefix of the backbone inside `model` (default: '' when `model` is a backbone, else 'backbone.' for an
   * attached model or 'encoder.' for a pretraining wrapper, whichever child has a group matcher).
   * Parameters outside it (neck, adapters, head, decoder) are unmatched, i.e. in the last layer with scale 1.
   */
  backbonePrefix?: string;
}

/** A variable's depth and scales. */
export interface LayerAssignment {
  name: string;
  variable: tf.Variable;
  /** 0 = stem ... last = head. */
  layerId: number;
  lrScale: number;
  weightDecay: number;
}

/** A group of parameters sharing a learning-rate scale and weight decay (timm's param group). */
export interface ParamGroup {
  /** `layer_<id>_decay` / `layer_<id>_no_decay`. */
  name: string;
  layerId: number;
  lrScale: number;
  weightDecay: number;
  paramNames: string[];
  variables: tf.Variable[];
}

/**
 * Layer-wise learning-rate decay (BEiT, Bao et al. 2022, sec. 2.6 / ELECTRA): give each trainable
 * parameter its depth from timm's group matcher (stem 0, blocks in order, final norm with the last block,
 * unmatched parameters such as the head in the last layer) and the scale `layerDecay^(last - depth)`.
 */
export function layerDecayAssignments(model: Module, opts: ParamGroupsLayerDecayOptions = {}): LayerAssignment[] {
  const decay = opts.layerDecay ?? 0.75;
  check(decay > 0, () => `layerDecay must be positive, got ${decay}`);
  const named = model.namedParameters();
  const prefix = opts.backbonePrefix ?? defaultBackbonePrefix(model, opts.matcher !== undefined);
  const sub = prefix ? model.getSubmodule(prefix.replace(/\.$/, '')) : model;
  const matcher = opts.matcher ?? groupMatcherOf(sub, false);
  const stripped = named.map(([n]) => (n.startsWith(prefix) ? n.slice(prefix.length) : `\u0000${n}`)); // outside the backbone: unmatched
  const ids = groupWithMatcher(stripped, matcher);
  const numLayers = Math.max(...ids.values()) + 1;
  const layerMax = numLayers - 1;
  const minScale = opts.minScale ?? 0;
  const wd = opts.weightDecay ?? 0.05;
  const nwd = opts.noWeightDecayList ?? noWeightDecayPatterns(model);
  const ex1d = opts.weightDecayExclude1d ?? true;
  const out: LayerAssignment[] = [];
  named.forEach(([name, p], i) => {
    if (!p.trainable) return;
    const layerId = ids.get(stripped[i]) ?? layerMax;
    const noDecay = defaultNoWeightDecay(name, p.torchShape, nwd, ex1d);
    out.push({
      name,
      variable: p.variable,
      layerId,
      lrScale: Math.max(minScale, decay ** (layerMax - layerId)),
      weightDecay: noDecay ? 0 : wd,
    });
  });
  return out;
}

/** Layer-wise learning-rate decay of the {@link Trainer}: the decay and, optionally, where the backbone is. */
export interface LayerDecayOptions {
  /** Decay per layer (e.g. 0.65-0.75 for ViT-B fine-tuning in MAE, 0.9 for Swin in SimMIM). */
  decay: number;
  /** Matcher for the backbone's parameters; default the backbone's own `groupMatcher(false)`. */
  matcher?: GroupMatcher;
  /** Prefix of the backbone inside the model (see {@link ParamGroupsLayerDecayOptions.backbonePrefix}). */
  backbonePrefix?: string;
  /** Lower bound of the scale (default 0). */
  minScale?: number;
}

/** The learning-rate scale of every trainable parameter of `model` under {@link layerDecayAssignments}. */
export function layerDecayScales(model: Module, opts: LayerDecayOptions): Map<string, number> {
  const as = layerDecayAssignments(model, {
    layerDecay: opts.decay,
    matcher: opts.matcher,
    backbonePrefix: opts.backbonePrefix,
    minScale: opts.minScale,
  });
  return new Map(as.map((a) => [a.name, a.lrScale]));
}

/** timm's `param_groups_layer_decay`: {@link layerDecayAssignments} grouped by (layer, decay / no decay). */
export function paramGroupsLayerDecay(model: Module, opts: ParamGroupsLayerDecayOptions = {}): ParamGroup[] {
  const groups = new Map<string, ParamGroup>();
  for (const a of layerDecayAssignments(model, opts)) {
    const name = `layer_${a.layerId}_${a.weightDecay > 0 ? 'decay' : 'no_decay'}`;
    let g = groups.get(name);
    if (!g) {
      g = { name, layerId: a.layerId, lrScale: a.lrScale, weightDecay: a.weightDecay, paramNames: [], variables: [] };
      groups.set(name, g);
    }
    g.paramNames.push(a.name);
    g.variables.push(a.variable);
  }
  return [...groups.values()];
}

/**
 * An optimizer over parameter groups: one tfjs optimizer per group built by `make(lr * lrScale)`, and
 * decoupled weight decay `v <- v (1 - lr lrScale weightDecay)` before each step (AdamW's form,
 * Loshchilov & Hutter 2019, Alg. 2). `minimize(f)` computes all gradients once.
 */
export class GroupedOptimizer {
  readonly optimizers: tf.Optimizer[];
  constructor(
    readonly groups: ParamGroup[],
    readonly lr: number,
    make: (lr: number) => tf.Optimizer,
  ) {
    check(groups.length > 0, () => 'GroupedOptimizer needs at least one parameter group');
    this.optimizers = groups.map((g) => make(lr * g.lrScale));
  }
  /** One step on the scalar loss `f()`; returns the loss (the caller disposes it). */
  minimize(f: () => tf.Scalar): tf.Scalar {
    const vars = this.groups.flatMap((g) => g.variables);
    const { value, grads } = tf.variableGrads(f, vars);
    this.groups.forEach((g, i) => {
      const named: tf.NamedTensorMap = {};
      for (const v of g.variables) if (grads[v.name]) named[v.name] = grads[v.name];
      if (!Object.keys(named).length) return;
      const k = this.lr * g.lrScale * g.weightDecay;
      if (k > 0) for (const v of g.variables) if (named[v.name]) tf.tidy(() => v.assign(v.mul(1 - k)));
      this.optimizers[i].applyGradients(named);
    });
    tf.dispose(grads);
    return value;
  }
  /** Release the optimizers' slots. */
  dispose(): void {
    for (const o of this.optimizers) o.dispose();
  }
}
