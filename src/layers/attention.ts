import * as tf from '@tensorflow/tfjs';
import { fusedBiasMaskSoftmax } from '../backends/fusedSoftmax.js';

/**
 * Shared pieces of multi-head attention (Vaswani et al. 2017, sec. 3.2.2), kept to 2-D matmuls
 * and rank-4 transposes so they run on the fast paths of every backend.
 */

/**
 * Split a fused qkv projection `[B * N, 3 * heads * hd]` (or `[B, N, 3 * heads * hd]`) into q, k, v
 * of shape `[B * heads, N, hd]` each (timm's `qkv.reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4)`).
 */
export function splitQkv(qkv: tf.Tensor, b: number, n: number, heads: number): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  return tf.tidy(() => {
    const hd = qkv.shape[qkv.rank - 1] / (3 * heads);
    const t = qkv.reshape([b, n, 3 * heads, hd]).transpose([0, 2, 1, 3]); // [B, 3*heads, N, hd]
    const [q, k, v] = tf.split(t, 3, 1);
    const r = (u: tf.Tensor) => u.reshape([b * heads, n, hd]) as tf.Tensor3D;
    return [r(q), r(k), r(v)];
  });
}

/** Split heads of a projection `[B, N, heads * hd]` into `[B * heads, N, hd]`. */
export function splitHeads(x: tf.Tensor, b: number, n: number, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const hd = x.shape[x.rank - 1] / heads;
    return x
      .reshape([b, n, heads, hd])
      .transpose([0, 2, 1, 3])
      .reshape([b * heads, n, hd]) as tf.Tensor3D;
  });
}

/** Merge heads: `[B * heads, N, hd]` -> `[B, N, heads * hd]`. */
export function mergeHeads(o: tf.Tensor, b: number, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [, n, hd] = o.shape;
    return o
      .reshape([b, heads, n, hd])
      .transpose([0, 2, 1, 3])
      .reshape([b, n, heads * hd]) as tf.Tensor3D;
  });
}

/** Attention's query / key normalisation, defined in `l2Normalize.ts` (gradient-safe at zero). */
export { l2Normalize } from './l2Normalize.js';

/**
 * Add a per-head bias `[heads, N, N]` (and an optional window mask `[nW, N, N]`) to attention logits
 * `[B * nW * heads, N, N]`, returning `[B * nW * heads, N, N]`.
 */
export function addBiasAndMask(attn: tf.Tensor, bias: tf.Tensor | null, mask: tf.Tensor | null, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [bh, n, m] = attn.shape;
    if (!bias && !mask) return attn.clone() as tf.Tensor3D;
    if (!mask) return tf.add(attn.reshape([bh / heads, heads, n, m]), bias!).reshape([bh, n, m]) as tf.Tensor3D;
    const nW = mask.shape[0];
    const full = bias ? tf.add(bias.expandDims(0), mask.expandDims(1)) : tf.tile(mask.expandDims(1), [1, heads, 1, 1]);
    return tf.add(attn.reshape([bh / (heads * nW), nW * heads, n, m]), full.reshape([nW * heads, n, m])).reshape([bh, n, m]) as tf.Tensor3D;
  });
}

/**
 * `softmax(addBiasAndMask(attn, bias, mask, heads))` over the last axis: window attention's probabilities
 * from logits `[B * nW * heads, N, N]`. One fused pass where our kernel is registered (wasm), else
 * exactly that composition.
 */
export function biasMaskSoftmax(attn: tf.Tensor, bias: tf.Tensor | null, mask: tf.Tensor | null, heads: number): tf.Tensor3D {
  return fusedBiasMaskSoftmax(attn, bias, mask, heads) ?? tf.tidy(() => tf.softmax(addBiasAndMask(attn, bias, mask, heads)) as tf.Tensor3D);
}
