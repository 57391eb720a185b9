import * as tf from '@tensorflow/tfjs';

/** 1-D sin-cos embedding of positions: `[sin(p w_i), cos(p w_i)]`, `w_i = 10000^(-i / (dim/2))`. */
function sinCos1d(dim: number, pos: number): number[] {
  const half = dim / 2;
  const sin: number[] = [];
  const cos: number[] = [];
  for (let i = 0; i < half; i++) {
    const w = 1 / 10000 ** (i / half);
    sin.push(Math.sin(pos * w));
    cos.push(Math.cos(pos * w));
  }
  return [...sin, ...cos];
}

/**
 * The fixed 2-D sin-cos position embedding of MAE (He et al. 2022) with a zero class-token row first:
 * `[1 + g*g, dim]`; each row is the embedding of the column coordinate (first half) then the row
 * coordinate (second half), as MAE's `get_2d_sincos_pos_embed(dim, g, cls_token=True)`.
 */
export function sinCos2dPosEmbed(dim: number, g: number): tf.Tensor2D {
  const rows: number[][] = [new Array(dim).fill(0)];
  for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) rows.push([...sinCos1d(dim / 2, j), ...sinCos1d(dim / 2, i)]);
  return tf.tensor2d(rows);
}
