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
      if (r)
        return [
          ...prefix,
          ...r
            .slice(1)
            .filter((g) => g !== undefined)
            .map(Number),
          ...(suffix ?? []),
        ];
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
