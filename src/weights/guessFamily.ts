import { withoutInit } from '../layers/init.js';
import { listFamilies } from '../models/registry.js';

/** A state-dict key with its block / stage indices replaced by `#` (`layers.#.blocks.#.attn.qkv.weight`). */
export function keyPattern(key: string): string {
  return key.replace(/(^|\.)\d+(?=\.|$)/g, '$1#');
}

function jaccard(a: Set<string>, b: Set<string>): number {
  let inter = 0;
  for (const k of a) if (b.has(k)) inter++;
  const union = a.size + b.size - inter;
  return union === 0 ? 0 : inter / union;
}

/** Key overlap (Jaccard of the {@link keyPattern} sets) of two key lists, in [0, 1]. */
export function keyOverlap(a: Iterable<string>, b: Iterable<string>): number {
  return jaccard(new Set([...a].map(keyPattern)), new Set([...b].map(keyPattern)));
}

let familyPatterns: Map<string, Set<string>> | null = null;
let patternsFor = -1;

/** The key patterns of every registered family, from a tiny model of each built without initial values. */
function registeredPatterns(): Map<string, Set<string>> {
  const fams = listFamilies();
  if (familyPatterns && patternsFor === fams.length) return familyPatterns;
  const out = new Map<string, Set<string>>();
  for (const f of fams) {
    try {
      const m = withoutInit(() => f.create({ ...f.tinyConfig(64), numClasses: 10 }));
      out.set(f.name, new Set([...m.namedParameters(), ...m.namedBuffers()].map(([n]) => keyPattern(n))));
      m.dispose();
    } catch {
      // a family whose tiny config cannot carry a classifier: skip it
    }
  }
  familyPatterns = out;
  patternsFor = fams.length;
  return out;
}

/**
 * The registered family whose state-dict keys best match `keys` (Jaccard overlap of the key patterns,
 * indices ignored), or null when no family shares a key.
 */
export function guessFamily(keys: string[]): { family: string; overlap: number } | null {
  const mine = new Set(keys.map(keyPattern));
  let best: { family: string; overlap: number } | null = null;
  for (const [family, pats] of registeredPatterns()) {
    const overlap = jaccard(mine, pats);
    if (overlap > 0 && (!best || overlap > best.overlap)) best = { family, overlap };
  }
  return best;
}
