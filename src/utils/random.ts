/**
 * mulberry32: a small, fast 32-bit seeded generator. Every seeded draw in the library (weight init,
 * masks, data order, synthetic images) goes through it, so a seed gives the same numbers on every
 * backend. Returns a function yielding uniform draws in [0, 1), starting from the 32-bit `state`.
 */
export function mulberry32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
