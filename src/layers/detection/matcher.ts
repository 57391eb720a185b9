import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { floatValues, int32Tensor } from './util.js';

/** Options of {@link matcher} (torchvision `det_utils.Matcher`). */
export interface MatcherOptions {
  highThreshold: number;
  lowThreshold: number;
  /** Also match every prediction that has the highest quality for some gt (Ren et al. 2015, sec. 3.1.2). */
  allowLowQualityMatches?: boolean;
}

/** Matched value below `lowThreshold`. */
export const BELOW_LOW_THRESHOLD = -1;
/** Matched value in `[lowThreshold, highThreshold)`. */
export const BETWEEN_THRESHOLDS = -2;

/**
 * Assigns each prediction (column of a `[G, P]` quality matrix) its best gt (row), or -1 (below the
 * low threshold) / -2 (between the thresholds); comparisons in float32 as torchvision.
 */
export class Matcher {
  readonly highThreshold: number;
  readonly lowThreshold: number;
  readonly allowLowQualityMatches: boolean;
  constructor(opts: MatcherOptions) {
    check(
      opts.lowThreshold <= opts.highThreshold,
      () => `matcher: lowThreshold ${opts.lowThreshold} must not exceed highThreshold ${opts.highThreshold}`,
    );
    this.highThreshold = opts.highThreshold;
    this.lowThreshold = opts.lowThreshold;
    this.allowLowQualityMatches = opts.allowLowQualityMatches ?? false;
  }

  /** int32 `[P]`: matched row index, -1 or -2. */
  match(quality: tf.Tensor2D): tf.Tensor1D {
    check(quality.rank === 2, () => `matcher.match: quality must be [G, P], got shape [${quality.shape.join(', ')}]`);
    return int32Tensor(this.matchValues(floatValues(quality), quality.shape[0], quality.shape[1]));
  }

  /** {@link match} on a row-major float32 `[G, P]` array. */
  matchValues(q: Float32Array, g: number, p: number): Int32Array {
    check(g > 0, () => 'matcher.match: no ground-truth boxes (the quality matrix has 0 rows)');
    const high = Math.fround(this.highThreshold);
    const low = Math.fround(this.lowThreshold);
    const matches = new Int32Array(p);
    const all = new Int32Array(p);
    for (let j = 0; j < p; j++) {
      let best = 0;
      let bv = q[j];
      for (let i = 1; i < g; i++) {
        const v = q[i * p + j];
        if (v > bv || (v !== v && bv === bv)) {
          bv = v;
          best = i;
        }
      }
      all[j] = best;
      matches[j] = bv < low ? BELOW_LOW_THRESHOLD : bv < high ? BETWEEN_THRESHOLDS : best;
    }
    if (this.allowLowQualityMatches) {
      for (let i = 0; i < g; i++) {
        let m = -Infinity;
        for (let j = 0; j < p; j++) if (q[i * p + j] > m) m = q[i * p + j];
        for (let j = 0; j < p; j++) if (q[i * p + j] === m) matches[j] = all[j];
      }
    }
    return matches;
  }
}

/** Build a {@link Matcher}. */
export function matcher(opts: MatcherOptions): Matcher {
  return new Matcher(opts);
}
