import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkRatio } from './maskUtils.js';
import { maskingFromOrder, TokenMasking } from './randomMasking.js';
import { SeedLike, toRng } from './rng.js';

/** Options of {@link semanticMasking}. */
export interface SemanticMaskingOptions {
  /** Fraction removed; each sample keeps `floor(L * (1 - maskRatio))` tokens. */
  maskRatio: number;
  seed?: SeedLike;
}

/**
 * MILAN's semantic-aware sampling (Hou et al. 2022, sec. 3.2; `attention_masking`): per sample, the
 * token order is drawn without replacement with probabilities proportional to `importance` (the
 * teacher's class-token attention over the patches, `[B, L]`, larger = more important) and the first
 * `floor(L * (1 - maskRatio))` tokens are kept, so important tokens are kept more often while the
 * choice stays random. Reads `importance` synchronously.
 */
export function semanticMasking(importance: tf.Tensor2D, opts: SemanticMaskingOptions): TokenMasking {
  check(importance.rank === 2, () => `importance must be [B, L], got shape [${importance.shape.join(', ')}]`);
  checkRatio('maskRatio', opts.maskRatio);
  const [b, l] = importance.shape;
  const w = importance.dataSync();
  const rng = toRng(opts.seed);
  const orders: Int32Array[] = [];
  for (let s = 0; s < b; s++) {
    const row = w.subarray(s * l, (s + 1) * l);
    let positive = 0;
    for (let i = 0; i < l; i++) if (row[i] > 0) positive++;
    check(
      positive >= l,
      () =>
        `importance of sample ${s} has ${l - positive} non-positive entries: every token needs a weight > 0 (as torch.multinomial without replacement)`,
    );
    orders.push(rng.weightedSample(row, l));
  }
  return maskingFromOrder(orders, Math.floor(l * (1 - opts.maskRatio)));
}
