import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, checkRatio } from './maskUtils.js';
import { SeedLike, toRng } from './rng.js';

/**
 * A per-sample token masking with the index tensors an MAE-style encoder needs (MAE, He et al.
 * 2022, sec. 3 "masking"): `idsShuffle` orders each sample's tokens (kept first), `idsKeep` are its
 * first `lenKeep` entries, `idsRestore` is the inverse permutation, and `mask` is 0 = kept,
 * 1 = removed, in the original token order. The caller disposes the tensors.
 */
export interface TokenMasking {
  /** `[B, L]` float 0/1, 1 = removed. */
  mask: tf.Tensor2D;
  /** `[B, lenKeep]` int32: the kept token indices, in shuffle order. */
  idsKeep: tf.Tensor2D;
  /** `[B, L - lenKeep]` int32: the removed token indices, in shuffle order. */
  idsDump: tf.Tensor2D;
  /** `[B, L]` int32: the full shuffle order. */
  idsShuffle: tf.Tensor2D;
  /** `[B, L]` int32: `argsort(idsShuffle)`, to put `[kept..., removed...]` back in token order. */
  idsRestore: tf.Tensor2D;
  /** Number of kept tokens per sample. */
  lenKeep: number;
}

/** Release every tensor of a {@link TokenMasking}. */
export function disposeTokenMasking(m: TokenMasking): void {
  tf.dispose([m.mask, m.idsKeep, m.idsDump, m.idsShuffle, m.idsRestore]);
}

/** Build a {@link TokenMasking} from per-sample token orders (kept tokens first). */
export function maskingFromOrder(orders: Int32Array[], lenKeep: number): TokenMasking {
  check(orders.length > 0, 'maskingFromOrder needs at least one sample');
  const b = orders.length;
  const l = orders[0].length;
  check(Number.isInteger(lenKeep) && lenKeep >= 0 && lenKeep <= l, () => `lenKeep ${lenKeep} must be in [0, ${l}]`);
  const shuffle = new Int32Array(b * l);
  const restore = new Int32Array(b * l);
  const mask = new Float32Array(b * l);
  for (let s = 0; s < b; s++) {
    const o = orders[s];
    check(o.length === l, () => `every sample needs ${l} tokens, sample ${s} has ${o.length}`);
    for (let i = 0; i < l; i++) {
      shuffle[s * l + i] = o[i];
      restore[s * l + o[i]] = i;
      mask[s * l + o[i]] = i < lenKeep ? 0 : 1;
    }
  }
  const idsShuffle = tf.tensor2d(shuffle, [b, l], 'int32');
  return tf.tidy(() => ({
    mask: tf.tensor2d(mask, [b, l]),
    idsKeep: idsShuffle.slice([0, 0], [b, lenKeep]) as tf.Tensor2D,
    idsDump: idsShuffle.slice([0, lenKeep], [b, l - lenKeep]) as tf.Tensor2D,
    idsShuffle,
    idsRestore: tf.tensor2d(restore, [b, l], 'int32'),
    lenKeep,
  }));
}

/** Options of {@link randomMasking}. */
export interface RandomMaskingOptions {
  batch: number;
  /** Tokens per sample (L). */
  numTokens: number;
  /** Fraction removed; `lenKeep = floor(L * (1 - maskRatio))` as the reference. */
  maskRatio: number;
  seed?: SeedLike;
}

/**
 * MAE's per-sample random masking (He et al. 2022, sec. 3): every sample keeps an independent uniformly
 * random subset of `floor(L * (1 - maskRatio))` tokens. Seeded, so the same seed gives the same masks.
 */
export function randomMasking(opts: RandomMaskingOptions): TokenMasking {
  checkPositiveInt('batch', opts.batch);
  checkPositiveInt('numTokens', opts.numTokens);
  checkRatio('maskRatio', opts.maskRatio);
  const rng = toRng(opts.seed);
  const lenKeep = Math.floor(opts.numTokens * (1 - opts.maskRatio));
  const orders = Array.from({ length: opts.batch }, () => rng.permutation(opts.numTokens));
  return maskingFromOrder(orders, lenKeep);
}
