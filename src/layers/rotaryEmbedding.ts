import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * 2-D rotary position embedding (RoPE; Su et al. 2021, "RoFormer", sec. 3.4; its 2-D axial form in
 * EVA-02, Fang et al. 2023, sec. 2.1), as timm's `RotaryEmbeddingCat` with `in_pixels=False`: per patch
 * a `[sin | cos]` table over the head dimension, applied to q and k as rotations of consecutive channel
 * pairs (timm's `apply_rot_embed_cat`).
 */

/** Options of {@link rotaryEmbedCat} (timm's `build_rotary_pos_embed` arguments, language-model frequencies). */
export interface RotaryEmbedCatOptions {
  /** Patch grid `[H, W]` of the tokens the table is for. */
  featShape: [number, number];
  /** Channels the table rotates (the head dimension); a multiple of 4. */
  dim: number;
  /**
   * Grid the model was pre-trained on: positions become `arange(H) / H * refH` (EVA's rule for running at
   * another resolution). Default: none (positions `arange(H)`).
   */
  refFeatShape?: [number, number] | null;
  /** Base of the frequency bands `temperature^(-j / nb)`. Default 10000. */
  temperature?: number;
  /** Added to the integer positions before the `refFeatShape` scaling. Default 0. */
  gridOffset?: number;
  /** 'ij' (default): angles `[h-bands, w-bands]`; 'xy': `[w-bands, h-bands]`. Rows are row-major over (h, w) either way. */
  gridIndexing?: 'ij' | 'xy';
}

const f32 = Math.fround;

/** timm's `freq_bands(nb, temperature, step=1)` in float32: `1 / temperature^(j / nb)`, j = 0..nb-1. */
export function ropeFreqBands(numBands: number, temperature = 10000): Float32Array {
  const out = new Float32Array(numBands);
  for (let j = 0; j < numBands; j++) out[j] = f32(1 / f32(temperature ** f32(j / numBands)));
  return out;
}

/**
 * The `[sin | cos]` values of {@link rotaryEmbedCat} as two `[H*W, dim]` row-major arrays, computed with
 * float32 rounding at every step as timm does (its table is float32 even for a float64 model).
 */
export function rotaryEmbedCatValues(opts: RotaryEmbedCatOptions): { sin: Float32Array; cos: Float32Array } {
  const [h, w] = opts.featShape;
  const dim = opts.dim;
  check(Number.isInteger(dim) && dim > 0 && dim % 4 === 0, () => `rotary embedding dim must be a positive multiple of 4, got ${dim}`);
  check(
    [h, w].every((s) => Number.isInteger(s) && s > 0),
    () => `featShape must be two positive integers, got [${opts.featShape.join(', ')}]`,
  );
  const ref = opts.refFeatShape ?? null;
  check(
    !ref || (ref.length === 2 && ref.every((s) => s > 0)),
    () => `refFeatShape must be two positive numbers or null, got [${ref?.join(', ')}]`,
  );
  const indexing = opts.gridIndexing ?? 'ij';
  check(indexing === 'ij' || indexing === 'xy', () => `gridIndexing must be 'ij' or 'xy', got '${indexing as string}'`);
  const nb = dim / 4;
  const bands = ropeFreqBands(nb, opts.temperature ?? 10000);
  const offset = f32(opts.gridOffset ?? 0);
  const positions = (n: number, r: number | null): Float32Array => {
    const t = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const p = f32(i + offset);
      t[i] = r === null ? p : f32(f32(p / n) * r);
    }
    return t;
  };
  const th = positions(h, ref ? ref[0] : null);
  const tw = positions(w, ref ? ref[1] : null);
  const sin = new Float32Array(h * w * dim);
  const cos = new Float32Array(h * w * dim);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const [first, second] = indexing === 'ij' ? [th[i], tw[j]] : [tw[j], th[i]];
      const row = (i * w + j) * dim;
      for (let k = 0; k < 2 * nb; k++) {
        const angle = f32((k < nb ? first : second) * bands[k % nb]);
        const s = f32(Math.sin(angle));
        const c = f32(Math.cos(angle));
        // every angle is used for one channel pair (timm's repeat_interleave(2))
        sin[row + 2 * k] = s;
        sin[row + 2 * k + 1] = s;
        cos[row + 2 * k] = c;
        cos[row + 2 * k + 1] = c;
      }
    }
  }
  return { sin, cos };
}

/**
 * The rotary table EVA applies to the patch tokens' q and k: `[H*W, 2*dim]` = `[sin | cos]`, rows
 * row-major over the grid, each angle repeated for one consecutive channel pair (timm's
 * `RotaryEmbeddingCat(dim, in_pixels=False, feat_shape, ref_feat_shape).get_embed()`).
 */
export function rotaryEmbedCat(opts: RotaryEmbedCatOptions): tf.Tensor2D {
  const { sin, cos } = rotaryEmbedCatValues(opts);
  const n = opts.featShape[0] * opts.featShape[1];
  const out = new Float32Array(n * 2 * opts.dim);
  for (let r = 0; r < n; r++) {
    out.set(sin.subarray(r * opts.dim, (r + 1) * opts.dim), r * 2 * opts.dim);
    out.set(cos.subarray(r * opts.dim, (r + 1) * opts.dim), r * 2 * opts.dim + opts.dim);
  }
  return tf.tensor2d(out, [n, 2 * opts.dim]);
}

/** The `[d, d]` permutation that swaps consecutive channel pairs: `x P` = `[x1, x0, x3, x2, ..]`. */
export function pairSwapMatrix(d: number): tf.Tensor2D {
  const m = new Float32Array(d * d);
  for (let i = 0; i < d; i++) m[(i ^ 1) * d + i] = 1;
  return tf.tensor2d(m, [d, d]);
}

/**
 * Swap every consecutive channel pair of the last axis with a 2-D matmul by the permutation `p`
 * (exact: one non-zero term per output; much faster than a generic reverse on every backend).
 */
function swapPairs(x: tf.Tensor, p: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    const d = x.shape[x.rank - 1];
    return tf.matMul(x.reshape([-1, d]) as tf.Tensor2D, p).reshape(x.shape);
  });
}

/** `[x0, x1, .., x_{d-1}]` -> `[-x_{d/2}, .., -x_{d-1}, x0, .., x_{d/2-1}]` (timm's `rope_rotate_half`). */
function rotateHalf(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [a, b] = tf.split(x, 2, -1);
    return tf.concat([tf.neg(b), a], -1);
  });
}

/**
 * timm's `apply_rot_embed_cat`: `x * cos + rot(x) * sin` for `x` `[..., N, dim]` and a table `emb`
 * `[N, 2*dim]` = `[sin | cos]` (broadcast over the leading axes). `rot` pairs consecutive channels,
 * `rot(x)[2i] = -x[2i+1]`, `rot(x)[2i+1] = x[2i]`; with `half` it is the rotate-half layout instead.
 */
export function applyRotEmbedCat(x: tf.Tensor, emb: tf.Tensor, opts: { half?: boolean } = {}): tf.Tensor {
  const d = x.shape[x.rank - 1];
  check(
    emb.rank === 2 && emb.shape[1] === 2 * d,
    () => `rotary table must be [N, ${2 * d}] for ${d} channels, got [${emb.shape.join(', ')}]`,
  );
  check(
    x.rank >= 2 && x.shape[x.rank - 2] === emb.shape[0],
    () => `rotary table has ${emb.shape[0]} rows for ${x.shape[x.rank - 2]} tokens (x [${x.shape.join(', ')}])`,
  );
  check(d % 2 === 0, () => `rotary embedding needs an even channel count, got ${d}`);
  return tf.tidy(() => {
    const [sin, cos] = tf.split(emb, 2, 1);
    if (opts.half) return tf.add(tf.mul(x, cos), tf.mul(rotateHalf(x), sin));
    const sign = tf.tensor1d(Float32Array.from({ length: d }, (_, i) => (i % 2 === 0 ? -1 : 1)));
    return tf.add(tf.mul(x, cos), tf.mul(swapPairs(x, pairSwapMatrix(d)), tf.mul(sin, sign)));
  });
}

/**
 * A rotary table prepared for a token sequence with `numPrefixTokens` leading tokens (class, registers)
 * that are not rotated: `cos` `[prefix + N, dim]` (1 on the prefix rows) and `sinSigned` (0 on the prefix
 * rows, the pair sign of `rot` folded in), so the rotation of all tokens is one
 * `x * cos + (x P) * sinSigned` with the pair swap `P` (see {@link applyRope}).
 */
export interface RopeTables {
  cos: tf.Tensor2D;
  sinSigned: tf.Tensor2D;
  /** {@link pairSwapMatrix} of the head dimension. */
  swap: tf.Tensor2D;
}

/** Build {@link RopeTables} for {@link rotaryEmbedCat}'s table with `numPrefixTokens` unrotated leading tokens. */
export function ropeTables(opts: RotaryEmbedCatOptions, numPrefixTokens: number): RopeTables {
  const { sin, cos } = rotaryEmbedCatValues(opts);
  const d = opts.dim;
  const n = opts.featShape[0] * opts.featShape[1] + numPrefixTokens;
  const c = new Float32Array(n * d).fill(1, 0, numPrefixTokens * d);
  const s = new Float32Array(n * d);
  c.set(cos, numPrefixTokens * d);
  for (let i = 0; i < sin.length; i++) s[numPrefixTokens * d + i] = i % 2 === 0 ? -sin[i] : sin[i];
  return { cos: tf.tensor2d(c, [n, d]), sinSigned: tf.tensor2d(s, [n, d]), swap: pairSwapMatrix(d) };
}

/**
 * Rotate q or k `[..., prefix + N, dim]` with prepared {@link RopeTables}: the patch tokens as
 * {@link applyRotEmbedCat} (interleaved pairs), the prefix tokens unchanged.
 */
export function applyRope(x: tf.Tensor, tables: RopeTables): tf.Tensor {
  const [n, d] = tables.cos.shape;
  check(x.shape[x.rank - 1] === d && x.shape[x.rank - 2] === n, () => `rotary tables are [${n}, ${d}], got tokens [${x.shape.join(', ')}]`);
  return tf.tidy(() => tf.add(tf.mul(x, tables.cos), tf.mul(swapPairs(x, tables.swap), tables.sinSigned)));
}
