import { VisBackbonesError } from '../errors.js';

/** timm's `MATCH_PREV_GROUP` suffix: a parameter whose ordinal ends with it joins the previous group. */
export const MATCH_PREV_GROUP = 99999;

/** One rule of a timm group matcher: a start-anchored regex and an optional suffix ordinal. */
export type MatcherRule = [pattern: string, suffix: number[] | null];

/**
 * timm's `group_matcher` dictionary: named groups in order (`stem`, `blocks`, ...), each one regex or a
 * list of rules. A parameter's ordinal is (group position, regex captures..., suffix...).
 */
export type GroupMatcherSpec = Record<string, string | MatcherRule[] | null>;

/** A matcher as a function from a parameter name to its ordinal (timm also accepts callables). */
export type GroupMatcherFn = (name: string) => number[];

/** Either form of matcher. */
export type GroupMatcher = GroupMatcherSpec | GroupMatcherFn;

/** A model that defines its own grouping (timm's `model.group_matcher(coarse)`). */
export interface HasGroupMatcher {
  /** The model's grouping; `coarse` groups whole stages rather than blocks. */
  groupMatcher(coarse?: boolean): GroupMatcher;
}

/** Compile a matcher to a name -> ordinal function (timm's `_get_grouping`; Python `re.match` = sticky regex). */
export function compileMatcher(m: GroupMatcher): GroupMatcherFn {
  if (typeof m === 'function') return m;
  const rules: [RegExp, number[], number[] | null][] = [];
  Object.entries(m).forEach(([, spec], ordinal) => {
    if (spec === null || spec === undefined) return;
    if (typeof spec === 'string') rules.push([new RegExp(spec, 'y'), [ordinal], null]);
    else for (const [pat, suffix] of spec) rules.push([new RegExp(pat, 'y'), [ordinal], suffix]);
  });
  return (name: string) => {
    for (const [re, prefix, suffix] of rules) {
      re.lastIndex = 0;
      const r = re.exec(name);
      if (r) return [...prefix, ...r.slice(1).filter((g) => g !== undefined).map(Number), ...(suffix ?? [])];
    }
    return [Infinity]; // unmatched (neck, head) -> largest ordinal
  };
}

function compareOrdinals(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return a.length - b.length;
}

/**
 * timm's `group_with_matcher(..., reverse=True)`: sort the distinct ordinals and number them 0, 1, ...;
 * an ordinal ending in {@link MATCH_PREV_GROUP} shares the previous number. Returns name -> layer id.
 */
export function groupWithMatcher(names: string[], matcher: GroupMatcher): Map<string, number> {
  const fn = compileMatcher(matcher);
  const byKey = new Map<string, { ord: number[]; names: string[] }>();
  for (const n of names) {
    const ord = fn(n);
    const key = ord.join(',');
    const e = byKey.get(key) ?? { ord, names: [] };
    e.names.push(n);
    byKey.set(key, e);
  }
  const groups = [...byKey.values()].sort((a, b) => compareOrdinals(a.ord, b.ord));
  const out = new Map<string, number>();
  let lid = -1;
  for (const g of groups) {
    if (lid < 0 || g.ord[g.ord.length - 1] !== MATCH_PREV_GROUP) lid += 1;
    for (const n of g.names) out.set(n, lid);
  }
  return out;
}

/** timm's Swin / SwinV2 matcher. */
const SWIN = (coarse: boolean): GroupMatcherSpec => ({
  stem: '^absolute_pos_embed|patch_embed',
  blocks: coarse ? '^layers\\.(\\d+)' : [['^layers\\.(\\d+).downsample', [0]], ['^layers\\.(\\d+)\\.\\w+\\.(\\d+)', null], ['^norm', [MATCH_PREV_GROUP]]],
});
/** timm's ConvNeXt matcher. */
const CONVNEXT = (coarse: boolean): GroupMatcherSpec => ({
  stem: '^stem',
  blocks: coarse ? '^stages\\.(\\d+)' : [['^stages\\.(\\d+)\\.downsample', [0]], ['^stages\\.(\\d+)\\.blocks\\.(\\d+)', null], ['^norm_pre', [MATCH_PREV_GROUP]]],
});
/** timm's PVT v2 / MViTv2 matcher (stages as blocks; PVT v2 has no top-level `norm`). */
const STAGES = (): GroupMatcherSpec => ({ stem: '^patch_embed', blocks: [['^stages\\.(\\d+)', null], ['^norm', [MATCH_PREV_GROUP]]] });
/** timm's ViT / SAM-ViT (ViTDet) matcher. */
const VIT = (): GroupMatcherSpec => ({ stem: '^cls_token|pos_embed|patch_embed', blocks: [['^blocks\\.(\\d+)', null], ['^norm', [MATCH_PREV_GROUP]]] });
/**
 * CSWin (the official code has no matcher): stem `stage1_conv_embed`; `stage<s>.<j>` is block j of stage
 * s-1; `merge<m>` (which precedes stage m+1) joins that stage's first block, as Swin's downsample does.
 */
const CSWIN =
  (coarse: boolean): GroupMatcherFn =>
  (name) => {
    if (/^stage1_conv_embed\./.test(name)) return [0];
    let r = /^stage(\d+)\.(\d+)\./.exec(name);
    if (r) return coarse ? [1, Number(r[1]) - 1] : [1, Number(r[1]) - 1, Number(r[2])];
    r = /^merge(\d+)\./.exec(name);
    if (r) return coarse ? [1, Number(r[1])] : [1, Number(r[1]), 0];
    if (!coarse && /^norm\./.test(name)) return [1, MATCH_PREV_GROUP];
    return [Infinity];
  };

/**
 * The group matcher of a model: its own `groupMatcher(coarse)` if it defines one, else timm's matcher of
 * its family, recognised from its parameter names (Swin/SwinV2 `layers.*`, CSWin `stage<n>.*`,
 * ConvNeXt `stem.*` + `stages.*`, PVT v2 / MViTv2 `stages.*`, ViT / ViTDet `blocks.*`).
 */
export function groupMatcherFor(model: { namedParameters(): [string, unknown][] }, coarse = false): GroupMatcher {
  const own = (model as unknown as Partial<HasGroupMatcher>).groupMatcher;
  if (typeof own === 'function') return own.call(model, coarse);
  const names = model.namedParameters().map(([n]) => n);
  const has = (re: RegExp) => names.some((n) => re.test(n));
  if (has(/^layers\.\d+\./)) return SWIN(coarse);
  if (has(/^stage\d+\.\d+\./) || has(/^stage1_conv_embed\./)) return CSWIN(coarse);
  if (has(/^stem\./) && has(/^stages\.\d+\./)) return CONVNEXT(coarse);
  if (has(/^stages\.\d+\./)) return STAGES();
  if (has(/^blocks\.\d+\./)) return VIT();
  throw new VisBackbonesError(
    `no group matcher for ${(model as object).constructor.name} (parameters ${names.slice(0, 4).join(', ')}, ...): give the model a groupMatcher(coarse) method or pass a matcher`,
  );
}
