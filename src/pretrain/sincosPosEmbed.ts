import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** MAE's `get_1d_sincos_pos_embed_from_grid`: `[sin(pos * omega), cos(pos * omega)]`, omega = 1 / 10000^(k / (D/2)). */
function sincos1d(dim: number, pos: number): number[] {
  const half = dim / 2;
  const out = new Array<number>(dim);
  for (let k = 0; k < half; k++) {
    const v = pos / 10000 ** (k / half);
    out[k] = Math.sin(v);
    out[half + k] = Math.cos(v);
  }
  return out;
}

/**
 * The fixed 2-D sin-cos position embedding of MAE (He et al. 2022, appendix A.1;
 * `get_2d_sincos_pos_embed`): for the token at (row i, column j) of an `h x w` grid (row-major), the
 * first `dim/2` values encode the column j and the last `dim/2` the row i, each as
 * `[sin(p * omega_k), cos(p * omega_k)]` with `omega_k = 1 / 10000^(k / (dim/4))`. With `clsToken`, a
 * row of zeros is prepended. Returns `[1, (cls +) h*w, dim]`.
 */
export function sincosPosEmbed2d(dim: number, grid: [number, number], clsToken = false): tf.Tensor3D {
  check(Number.isInteger(dim) && dim % 4 === 0 && dim > 0, () => `sin-cos position embeddings need a width divisible by 4, got ${dim}`);
  const [h, w] = grid;
  const n = h * w + (clsToken ? 1 : 0);
  const out = new Float32Array(n * dim);
  let t = clsToken ? 1 : 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++, t++) {
      out.set(sincos1d(dim / 2, j), t * dim);
      out.set(sincos1d(dim / 2, i), t * dim + dim / 2);
    }
  }
  return tf.tensor3d(out, [1, n, dim]);
}
