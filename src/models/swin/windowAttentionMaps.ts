import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { addBiasAndMask, splitQkv } from '../../layers/attention.js';
import { CosineWindowAttention } from '../../layers/cosineWindowAttention.js';
import { l2Normalize } from '../../layers/l2Normalize.js';
import { WindowAttention } from '../../layers/windowAttention.js';
import { roll2d, windowPartition } from '../../layers/windows.js';
import type { SwinTransformer } from './swinTransformer.js';

/** The attention probabilities of one Swin block, with the geometry needed to draw them. */
export interface WindowAttentionMaps {
  /** `[B * nW, heads, N, N]` softmax probabilities (query row, key column), N = window tokens. */
  probs: tf.Tensor4D;
  /** `[wh, ww]` window size (clamped to the stage resolution, as the block uses it). */
  window: [number, number];
  /** `[sh, sw]` cyclic shift of the block (0 for regular windows). */
  shift: [number, number];
  /** `[H, W]` token grid of the stage. */
  grid: [number, number];
  /** Windows per image (`(H / wh) * (W / ww)`), in row-major order over the shifted grid. */
  windowsPerImage: number;
  heads: number;
}

/**
 * The attention probabilities `softmax(logits + B + M)` of block `block` of stage `stage` of a Swin
 * or SwinV2 model for the images `x`, computed exactly as the block's attention computes them:
 * Swin (Liu et al. 2021, sec. 3.2 eq. 4) `q k^T / sqrt(d)` plus the relative position bias; SwinV2
 * (Liu et al. 2022, sec. 3.3 eq. 2) `cos(q, k) * exp(min(logit_scale, log 100))` plus the
 * continuous position bias; both plus the shifted-window mask on shifted blocks. Windows are those
 * of the cyclically shifted map (token `(i, j)` of window `w` sits at `((wi*wh + i + sh) mod H,
 * (wj*ww + j + sw) mod W)` of the stage grid).
 */
export function windowAttentionMaps(model: SwinTransformer, x: tf.Tensor, stage: number, block: number): WindowAttentionMaps {
  check(stage >= 0 && stage < model.layers.length, () => `stage ${stage}: expected 0..${model.layers.length - 1}`);
  const st = model.layers.items[stage];
  check(block >= 0 && block < st.blocks.length, () => `block ${block}: stage ${stage} has ${st.blocks.length} blocks`);
  model.checkInput(x);
  const blk = st.blocks.items[block];
  const attn = blk.attn;
  const heads = attn.opts.numHeads;
  let grid: [number, number] = [0, 0];
  const probs = tf.tidy(() => {
    let y = model.patchEmbed.forward(x) as tf.Tensor4D;
    for (let i = 0; i < stage; i++) y = model.layers.items[i].forward(y);
    if (st.downsample) y = st.downsample.forward(y) as tf.Tensor4D;
    for (let j = 0; j < block; j++) y = st.blocks.items[j].forward(y);
    grid = [y.shape[1], y.shape[2]];
    const xin = blk.opts.version === 'v1' ? (blk.norm1.forward(y) as tf.Tensor4D) : y;
    const [sh, sw] = blk.shift;
    const shifted = sh || sw ? roll2d(xin, -sh, -sw) : xin;
    const win = windowPartition(shifted, blk.window[0], blk.window[1]);
    const [bw, n, c] = win.shape;
    let logits: tf.Tensor;
    if (attn instanceof CosineWindowAttention) {
      let qkv = attn.qkv.forward(win.reshape([bw * n, c])) as tf.Tensor;
      if (attn.qBias && attn.vBias) qkv = tf.add(qkv, tf.concat([attn.qBias.value, tf.zeros([c]), attn.vBias.value]));
      const [q, k] = splitQkv(qkv, bw, n, heads);
      const scale = tf.exp(tf.minimum(attn.logitScale.value, Math.log(100)));
      logits = tf.mul(tf.matMul(l2Normalize(q), l2Normalize(k), false, true).reshape([bw, heads, n, n]), scale).reshape([bw * heads, n, n]);
    } else {
      const a = attn as WindowAttention;
      const [q, k] = splitQkv(a.qkv.forward(win) as tf.Tensor, bw, n, heads);
      logits = tf.matMul(tf.mul(q, a.scale), k, false, true);
    }
    const withBias = addBiasAndMask(logits, attn.relativePositionBias(), blk.attnMask, heads);
    return tf.softmax(withBias).reshape([bw, heads, n, n]) as tf.Tensor4D;
  });
  const windowsPerImage = (grid[0] / blk.window[0]) * (grid[1] / blk.window[1]);
  return { probs, window: [...blk.window], shift: [...blk.shift], grid, windowsPerImage, heads };
}
