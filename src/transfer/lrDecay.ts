import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import type { Module } from '../layers/module.js';
import { GroupMatcher, groupMatcherFor, groupWithMatcher } from './groupMatcher.js';

/** Options of {@link paramGroupsLayerDecay} (timm's `param_groups_layer_decay` arguments). */
export interface ParamGroupsLayerDecayOptions {
  /** Per-layer learning-rate decay: layer `i` of `n` gets `layerDecay^(n - 1 - i)` (default 0.75). */
  layerDecay?: number;
  /** Weight decay of the decayed groups (default 0.05). */
  weightDecay?: number;
  /** Names (fnmatch patterns) without weight decay; default: the model's `noWeightDecay()` if it has one. */
  noWeightDecayList?: string[];
  /** No weight decay for parameters with <= 1 dimension (biases, norms); default true. */
  weightDecayExclude1d?: boolean;
  /** Lower bound of the scale (default 0). */
  minScale?: number;
  /** Matcher for the backbone's parameters; default {@link groupMatcherFor}(backbone, false). */
  matcher?: GroupMatcher;
  /**
   * Prefix of the backbone inside `model` (default: 'backbone.' when `model` has a `backbone` child, as
   * an {@link attach}ed model does, else ''). Parameters outside it (neck, adapters, head) are unmatched,
   * i.e. in the last layer with scale 1.
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

function fnmatch(name: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
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
  const hasBackbone = model.children().some(([n]) => n === 'backbone');
  const prefix = opts.backbonePrefix ?? (hasBackbone ? 'backbone.' : '');
  const sub = prefix ? model.getSubmodule(prefix.replace(/\.$/, '')) : model;
  const matcher = opts.matcher ?? groupMatcherFor(sub, false);
  const stripped = named.map(([n]) => (n.startsWith(prefix) ? n.slice(prefix.length) : `\u0000${n}`)); // outside the backbone: unmatched
  const ids = groupWithMatcher(stripped, matcher);
  const numLayers = Math.max(...ids.values()) + 1;
  const layerMax = numLayers - 1;
  const minScale = opts.minScale ?? 0;
  const wd = opts.weightDecay ?? 0.05;
  const ownNwd = (model as unknown as { noWeightDecay?: () => string[] }).noWeightDecay;
  const nwd = opts.noWeightDecayList ?? (typeof ownNwd === 'function' ? ownNwd.call(model) : []);
  const ex1d = opts.weightDecayExclude1d ?? true;
  const out: LayerAssignment[] = [];
  named.forEach(([name, p], i) => {
    if (!p.trainable) return;
    const layerId = ids.get(stripped[i]) ?? layerMax;
    const noDecay = (ex1d && p.torchShape.length <= 1) || nwd.some((pat) => fnmatch(name, pat));
    out.push({ name, variable: p.variable, layerId, lrScale: Math.max(minScale, decay ** (layerMax - layerId)), weightDecay: noDecay ? 0 : wd });
  });
  return out;
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
  constructor(readonly groups: ParamGroup[], readonly lr: number, make: (lr: number) => tf.Optimizer) {
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
