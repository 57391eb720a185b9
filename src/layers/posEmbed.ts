import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { FLOAT32_EPS, pinv, svd } from '../utils/pinv.js';
import { InterpolationMode, interpolateNhwc, resizeMatrix2d, resizeWeights } from './interpolate.js';

/**
 * Absolute position embeddings and patch-embedding kernels moved to another grid, as timm's
 * `resample_abs_pos_embed`, `resample_abs_pos_embed_nhwc` and `resample_patch_embed` do, plus the
 * class/register token helper of ViT (Dosovitskiy et al. 2021, sec. 3.1 eq. 1).
 */

/** Options of {@link resampleAbsPosEmbed} (timm's arguments). */
export interface ResamplePosEmbedOptions {
  /** Grid `[h, w]` of the embedding; default: square, `sqrt(tokens - prefix)`. */
  oldSize?: [number, number];
  /** Leading tokens (class, registers) that are kept as they are. Default 1. */
  numPrefixTokens?: number;
  /** Default 'bicubic'. */
  interpolation?: InterpolationMode;
  /** Default true (timm's default). */
  antialias?: boolean;
}

/**
 * timm's `resample_abs_pos_embed` (ViT sec. 3.2 "fine-tuning and higher resolution": 2-D interpolation
 * of the pre-trained position embeddings): `posemb` `[1, prefix + h*w, C]` -> `[1, prefix + H*W, C]`.
 * The prefix tokens are kept, the grid is resized with `F.interpolate` semantics (bicubic with
 * antialiasing by default). Differentiable with respect to `posemb`. Returns a new tensor.
 */
export function resampleAbsPosEmbed(posemb: tf.Tensor, newSize: [number, number], opts: ResamplePosEmbedOptions = {}): tf.Tensor3D {
  check(
    posemb.rank === 3 && posemb.shape[0] === 1,
    () => `resampleAbsPosEmbed expects a [1, L, C] embedding, got shape [${posemb.shape.join(', ')}]`,
  );
  const [, len, c] = posemb.shape as [number, number, number];
  const prefix = opts.numPrefixTokens ?? 1;
  check(Number.isInteger(prefix) && prefix >= 0 && prefix <= len, () => `numPrefixTokens must be an integer in [0, ${len}], got ${prefix}`);
  const [nh, nw] = newSize;
  // timm returns the embedding unchanged when the token count already matches and the new grid is square
  if (nh * nw + prefix === len && nh === nw) return posemb.clone() as tf.Tensor3D;
  const n = len - prefix;
  let old = opts.oldSize;
  if (!old) {
    const s = Math.floor(Math.sqrt(n));
    check(
      s * s === n,
      () => `position embedding has ${n} grid tokens (after ${prefix} prefix tokens), which is not a square grid: pass oldSize`,
    );
    old = [s, s];
  }
  check(old[0] * old[1] === n, () => `oldSize ${old![0]}x${old![1]} does not match the ${n} grid tokens of the position embedding`);
  const [oh, ow] = old;
  return tf.tidy(() => {
    const grid = posemb.slice([0, prefix, 0], [1, n, c]).reshape([1, oh, ow, c]);
    const resized = interpolateNhwc(grid, [nh, nw], { mode: opts.interpolation ?? 'bicubic', antialias: opts.antialias ?? true }).reshape([
      1,
      nh * nw,
      c,
    ]);
    return (prefix > 0 ? tf.concat([posemb.slice([0, 0, 0], [1, prefix, c]), resized], 1) : resized) as tf.Tensor3D;
  });
}

/**
 * timm's `resample_abs_pos_embed_nhwc`: an NHWC position embedding `[1, h, w, C]` (ViTDet / SAM) resized
 * to `[1, H, W, C]` (bicubic with antialiasing by default). Differentiable; returns a new tensor.
 */
export function resampleAbsPosEmbedNhwc(
  posemb: tf.Tensor,
  newSize: [number, number],
  opts: { interpolation?: InterpolationMode; antialias?: boolean } = {},
): tf.Tensor4D {
  check(
    posemb.rank === 4 && posemb.shape[0] === 1,
    () => `resampleAbsPosEmbedNhwc expects a [1, H, W, C] embedding, got shape [${posemb.shape.join(', ')}]`,
  );
  if (posemb.shape[1] === newSize[0] && posemb.shape[2] === newSize[1]) return posemb.clone() as tf.Tensor4D;
  return interpolateNhwc(posemb, newSize, { mode: opts.interpolation ?? 'bicubic', antialias: opts.antialias ?? true });
}

/**
 * The `[kh*kw, nh*nw]` pseudo-inverse of the patch resize matrix used by {@link resamplePatchEmbed}.
 * The 2-D resize matrix is the Kronecker product of the two axes' matrices, so its pseudo-inverse is
 * the Kronecker product of theirs; when some product of singular values would fall under
 * `torch.linalg.pinv`'s cutoff the full matrix is inverted instead, so the result is the same either way.
 */
export function patchResizePinv(
  oldSize: [number, number],
  newSize: [number, number],
  interpolation: InterpolationMode,
  antialias: boolean,
): Float64Array {
  const [kh, kw] = oldSize;
  const [nh, nw] = newSize;
  const opts = { mode: interpolation, antialias };
  const rh = resizeWeights(kh, nh, opts);
  const rw = resizeWeights(kw, nw, opts);
  const sh = svd(rh, nh, kh).s;
  const sw = svd(rw, nw, kw).s;
  const maxH = Math.max(...sh);
  const maxW = Math.max(...sw);
  const cut = Math.max(kh * kw, nh * nw) * FLOAT32_EPS * maxH * maxW;
  const separable = sh.every((a) => sw.every((b) => a * b > cut));
  if (!separable) return pinv(resizeMatrix2d(oldSize, newSize, opts), nh * nw, kh * kw);
  const ph = pinv(rh, nh, kh, 0); // [kh, nh]
  const pw = pinv(rw, nw, kw, 0); // [kw, nw]
  const out = new Float64Array(kh * kw * nh * nw);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const row = (i * kw + j) * nh * nw;
      for (let a = 0; a < nh; a++) {
        const x = ph[i * nh + a];
        for (let b = 0; b < nw; b++) out[row + a * nw + b] = x * pw[j * nw + b];
      }
    }
  }
  return out;
}

/**
 * timm's `resample_patch_embed` (FlexiViT, Beyer et al. 2023, sec. 3.4 "PI-resize"): a patch-embedding
 * kernel `[O, I, kh, kw]` (PyTorch layout) resized to `[O, I, nh, nw]` so that, for an input resized with
 * the same interpolation, the token is (as far as possible) unchanged: `w_new = pinv(R^T) w_old`, with R
 * the patch resize matrix. Bicubic with antialiasing by default, as timm. Returns a new tensor.
 */
export function resamplePatchEmbed(
  weight: tf.Tensor,
  newSize: [number, number],
  opts: { interpolation?: InterpolationMode; antialias?: boolean } = {},
): tf.Tensor4D {
  check(weight.rank === 4, () => `resamplePatchEmbed expects a [out, in, kh, kw] kernel, got shape [${weight.shape.join(', ')}]`);
  const [o, i, kh, kw] = weight.shape;
  const [nh, nw] = newSize;
  check(
    Number.isInteger(nh) && Number.isInteger(nw) && nh > 0 && nw > 0,
    () => `resamplePatchEmbed: new size must be positive integers, got ${nh}x${nw}`,
  );
  if (kh === nh && kw === nw) return weight.clone() as tf.Tensor4D;
  const p = patchResizePinv([kh, kw], [nh, nw], opts.interpolation ?? 'bicubic', opts.antialias ?? true);
  return tf.tidy(() => {
    const pm = tf.tensor2d(Float32Array.from(p), [kh * kw, nh * nw]);
    return tf.matMul(weight.reshape([o * i, kh * kw]) as tf.Tensor2D, pm).reshape([o, i, nh, nw]) as tf.Tensor4D;
  });
}

/**
 * Prepend learned tokens (class token, register tokens; each `[1, k, C]`) to every sequence of a batch
 * `[B, N, C]` (ViT eq. 1, `z_0 = [x_class; x_p E] + E_pos` before the position embedding is added).
 */
export function prependTokens(x: tf.Tensor, tokens: tf.Tensor[]): tf.Tensor3D {
  check(x.rank === 3, () => `prependTokens expects [B, N, C] tokens, got shape [${x.shape.join(', ')}]`);
  const [b, , c] = x.shape;
  for (const t of tokens) {
    check(t.rank === 3 && t.shape[0] === 1 && t.shape[2] === c, () => `prefix tokens must be [1, k, ${c}], got [${t.shape.join(', ')}]`);
  }
  if (!tokens.length) return x.clone() as tf.Tensor3D;
  return tf.tidy(() => tf.concat([...tokens.map((t) => (b === 1 ? t : tf.tile(t, [b, 1, 1]))), x], 1) as tf.Tensor3D);
}
