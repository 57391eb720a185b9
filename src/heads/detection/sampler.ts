import { randomUniform01 } from '../../layers/init.js';

/** A random permutation of `0 .. n-1` (Fisher-Yates on the package's seeded generator). */
function randperm(n: number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(randomUniform01() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/**
 * torchvision's `BalancedPositiveNegativeSampler` for one image: positives are labels `>= 1`, negatives
 * labels `== 0`; `min(#pos, floor(batch fraction))` positives and `min(#neg, batch - #pos picked)`
 * negatives drawn at random. Returns both pick lists, ascending.
 */
export function samplePositiveNegative(
  labels: ArrayLike<number>,
  batchSizePerImage: number,
  positiveFraction: number,
): { pos: number[]; neg: number[] } {
  const positive: number[] = [];
  const negative: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= 1) positive.push(i);
    else if (labels[i] === 0) negative.push(i);
  }
  const numPos = Math.min(positive.length, Math.trunc(batchSizePerImage * positiveFraction));
  const numNeg = Math.min(negative.length, batchSizePerImage - numPos);
  const pos = randperm(positive.length)
    .slice(0, numPos)
    .map((k) => positive[k])
    .sort((a, b) => a - b);
  const neg = randperm(negative.length)
    .slice(0, numNeg)
    .map((k) => negative[k])
    .sort((a, b) => a - b);
  return { pos, neg };
}
