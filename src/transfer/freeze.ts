import { check } from '../errors.js';
import type { Module } from '../layers/module.js';
import { compileMatcher, GroupMatcher, MATCH_PREV_GROUP } from '../models/groupMatcher.js';
import { groupMatcherOf } from '../train/layerDecay.js';

/**
 * Freeze every parameter of `module` (a backbone, or any part): its variables leave
 * `trainableVariables()` and get `trainable = false`, so optimizers neither see nor update them.
 * Returns the frozen parameter names.
 */
export function freeze(module: Module): string[] {
  module.setTrainable(false);
  return module.namedParameters().map(([n]) => n);
}

/** Make every parameter of `module` trainable again (running statistics stay frozen). */
export function unfreeze(module: Module): void {
  module.setTrainable(true);
}

/** Names of the parameters that an optimizer would not update. */
export function frozenParameterNames(module: Module): string[] {
  return module
    .namedParameters()
    .filter(([, p]) => !p.trainable)
    .map(([n]) => n);
}

/**
 * The stage of each backbone parameter from the coarse group matcher (timm's `group_matcher(coarse=True)`):
 * -1 for the stem (patch embedding, position embeddings), `i` for stage `i` (for isotropic ViTs: block `i`),
 * `Infinity` for what follows the last stage (final norm, neck, head).
 */
export function parameterStages(backbone: Module, matcher?: GroupMatcher): Map<string, number> {
  const fn = compileMatcher(matcher ?? groupMatcherOf(backbone, true));
  const out = new Map<string, number>();
  for (const [n] of backbone.namedParameters()) {
    const ord = fn(n);
    let stage = Infinity;
    if (ord[0] === 0) stage = -1;
    else if (ord[0] === 1 && ord.length > 1 && ord[1] !== MATCH_PREV_GROUP) stage = ord[1];
    out.set(n, stage);
  }
  return out;
}

/**
 * Freeze the stem and the first `numStages` stages of a backbone (as the frozen-model studies and
 * detectron2's `freeze_at` do); later stages, the final norm and the head stay trainable. `numStages = 0`
 * freezes the stem only. Returns the frozen parameter names.
 */
export function freezeStages(backbone: Module, numStages: number, matcher?: GroupMatcher): string[] {
  check(Number.isInteger(numStages) && numStages >= 0, () => `freezeStages: numStages must be a non-negative integer, got ${numStages}`);
  const stages = parameterStages(backbone, matcher);
  const count = Math.max(-1, ...[...stages.values()].filter((s) => Number.isFinite(s))) + 1;
  check(numStages <= count, () => `freezeStages: numStages ${numStages} is more than the backbone's ${count} stages`);
  const frozen: string[] = [];
  for (const [n, p] of backbone.namedParameters()) {
    if ((stages.get(n) as number) < numStages) {
      p.trainable = false;
      (p.variable as { trainable: boolean }).trainable = false;
      frozen.push(n);
    }
  }
  return frozen;
}
