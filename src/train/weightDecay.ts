import type { Module } from '../layers/module.js';

/** Python's `fnmatch.fnmatchcase`, for the `*` / `?` patterns of timm's `no_weight_decay()`. */
export function fnmatch(name: string, pattern: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/**
 * The names (fnmatch patterns) `model` trains without weight decay: its own `noWeightDecay()` and that of
 * every submodule that declares one, prefixed with the submodule's path (an attached backbone's
 * `backbone.pos_embed`, a pretraining wrapper's `encoder.absolute_pos_embed`), as timm's
 * `model.no_weight_decay()` lists them.
 */
export function noWeightDecayPatterns(model: Module): string[] {
  const out = new Set<string>();
  for (const [path, m] of model.namedModules()) {
    const own = (m as unknown as { noWeightDecay?: () => string[] }).noWeightDecay;
    if (typeof own !== 'function') continue;
    for (const pat of own.call(m)) out.add(path ? `${path}.${pat}` : pat);
  }
  return [...out];
}

/**
 * timm's weight-decay rule (`param_groups_weight_decay` / `param_groups_layer_decay`): no decay for a
 * parameter with at most one dimension or a name ending in `.bias` (biases, norm scales; unless
 * `exclude1d` is false), nor for a name matching one of `patterns` (the model's `noWeightDecay()`, see
 * {@link noWeightDecayPatterns}). `shape` is the parameter's shape (any layout: only its rank is read).
 */
export function defaultNoWeightDecay(name: string, shape: number[], patterns: string[] = [], exclude1d = true): boolean {
  if (exclude1d && (shape.length <= 1 || name.endsWith('.bias'))) return true;
  return patterns.some((pat) => fnmatch(name, pat));
}

/** {@link defaultNoWeightDecay} with `model`'s patterns, as a predicate over (name, shape). */
export function noWeightDecayRule(model: Module, extra: string[] = [], exclude1d = true): (name: string, shape: number[]) => boolean {
  const patterns = [...noWeightDecayPatterns(model), ...extra];
  return (name, shape) => defaultNoWeightDecay(name, shape, patterns, exclude1d);
}
