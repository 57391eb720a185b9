import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { resizeWeights } from './interpolate.js';

/**
 * Decomposed relative position embeddings (MViTv2, Li et al. 2022, sec. 4.1 eq. 3; used by ViTDet /
 * SAM): the bias between query `(y, x)` and key `(y', x')` is `q . R_h[y, y'] + q . R_w[x, x']`, with one
 * learned table per axis. Written as timm's `vision_transformer_sam.get_rel_pos` /
 * `add_decomposed_rel_pos`, with the table lookup (and its linear resize) folded into one matrix so it
 * is a plain, differentiable matmul.
 */

/**
 * The `[qSize * kSize, tableLen]` matrix `A` with `A @ table = get_rel_pos(qSize, kSize, table)` flattened
 * over (query, key): row `(i, j)` picks table row `floor(i * max(k/q, 1) - j * max(q/k, 1) + (k - 1) * max(q/k, 1))`
 * of the table linearly resized (`F.interpolate(mode='linear')`) to `2 * max(q, k) - 1` rows when its
 * length differs. Index arithmetic follows PyTorch's float32 computation.
 */
export function relPosLookupMatrix(qSize: number, kSize: number, tableLen: number): Float32Array {
  check(
    Number.isInteger(qSize) && qSize > 0 && Number.isInteger(kSize) && kSize > 0,
    () => `relative position sizes must be positive integers, got q=${qSize}, k=${kSize}`,
  );
  check(Number.isInteger(tableLen) && tableLen > 0, () => `relative position table length must be a positive integer, got ${tableLen}`);
  const maxRel = 2 * Math.max(qSize, kSize) - 1;
  const resize = tableLen === maxRel ? null : resizeWeights(tableLen, maxRel, { mode: 'linear' });
  const f = Math.fround;
  const rq = f(Math.max(kSize / qSize, 1));
  const rk = f(Math.max(qSize / kSize, 1));
  const offset = f((kSize - 1) * Math.max(qSize / kSize, 1));
  const out = new Float32Array(qSize * kSize * tableLen);
  for (let i = 0; i < qSize; i++) {
    for (let j = 0; j < kSize; j++) {
      const rel = Math.trunc(f(f(f(i * rq) - f(j * rk)) + offset));
      const row = (i * kSize + j) * tableLen;
      if (resize) for (let t = 0; t < tableLen; t++) out[row + t] = resize[rel * tableLen + t];
      else out[row + rel] = 1;
    }
  }
  return out;
}

/** {@link relPosLookupMatrix} as a `[qSize * kSize, tableLen]` tensor. */
export function relPosLookupTensor(qSize: number, kSize: number, tableLen: number): tf.Tensor2D {
  return tf.tensor2d(relPosLookupMatrix(qSize, kSize, tableLen), [qSize * kSize, tableLen]);
}

/**
 * timm/SAM `get_rel_pos`: the `[qSize, kSize, C]` relative embeddings of a `[L, C]` table (resized
 * linearly when `L != 2 * max(qSize, kSize) - 1`). Pass a precomputed `lookup` (from
 * {@link relPosLookupTensor}) to skip rebuilding it. Differentiable with respect to the table.
 */
export function getRelPos(qSize: number, kSize: number, relPos: tf.Tensor, lookup?: tf.Tensor2D): tf.Tensor3D {
  check(relPos.rank === 2, () => `relative position table must be [L, C], got shape [${relPos.shape.join(', ')}]`);
  const [len, c] = relPos.shape;
  if (lookup) {
    check(
      lookup.shape[0] === qSize * kSize && lookup.shape[1] === len,
      () => `lookup matrix [${lookup.shape.join(', ')}] does not fit q=${qSize}, k=${kSize}, table length ${len}`,
    );
  }
  return tf.tidy(() => {
    const a = lookup ?? relPosLookupTensor(qSize, kSize, len);
    return tf.matMul(a, relPos as tf.Tensor2D).reshape([qSize, kSize, c]) as tf.Tensor3D;
  });
}

/**
 * timm/SAM `add_decomposed_rel_pos` (MViTv2 eq. 3): `attn` `[B, qh*qw, kh*kw]` plus
 * `einsum('bhwc,hkc->bhwk', q, Rh)` broadcast over key columns and `einsum('bhwc,wkc->bhwk', q, Rw)`
 * broadcast over key rows, where `q` is `[B, qh*qw, C]` (unscaled queries, B = batch x windows x heads),
 * `rh` = {@link getRelPos}`(qh, kh, rel_pos_h)` `[qh, kh, C]` and `rw` likewise `[qw, kw, C]`.
 */
export function addDecomposedRelPos(
  attn: tf.Tensor,
  q: tf.Tensor,
  rh: tf.Tensor,
  rw: tf.Tensor,
  qSize: [number, number],
  kSize: [number, number],
): tf.Tensor3D {
  const [qh, qw] = qSize;
  const [kh, kw] = kSize;
  check(
    q.rank === 3 && q.shape[1] === qh * qw,
    () => `queries must be [B, ${qh * qw}, C] for a ${qh}x${qw} query grid, got [${q.shape.join(', ')}]`,
  );
  const [b, , c] = q.shape;
  check(
    attn.rank === 3 && attn.shape[0] === b && attn.shape[1] === qh * qw && attn.shape[2] === kh * kw,
    () => `attention logits must be [${b}, ${qh * qw}, ${kh * kw}], got [${attn.shape.join(', ')}]`,
  );
  check(rh.shape.join(',') === [qh, kh, c].join(','), () => `Rh must be [${qh}, ${kh}, ${c}], got [${rh.shape.join(', ')}]`);
  check(rw.shape.join(',') === [qw, kw, c].join(','), () => `Rw must be [${qw}, ${kw}, ${c}], got [${rw.shape.join(', ')}]`);
  return tf.tidy(() => {
    const rq = q.reshape([b, qh, qw, c]);
    // rel_h[b, y, x, k] = sum_c q[b, y, x, c] Rh[y, k, c]: batched over y
    const relH = tf
      .matMul(rq.transpose([1, 0, 2, 3]).reshape([qh, b * qw, c]) as tf.Tensor3D, rh as tf.Tensor3D, false, true)
      .reshape([qh, b, qw, kh])
      .transpose([1, 0, 2, 3]);
    // rel_w[b, y, x, k] = sum_c q[b, y, x, c] Rw[x, k, c]: batched over x
    const relW = tf
      .matMul(rq.transpose([2, 0, 1, 3]).reshape([qw, b * qh, c]) as tf.Tensor3D, rw as tf.Tensor3D, false, true)
      .reshape([qw, b, qh, kw])
      .transpose([1, 2, 0, 3]);
    const rows = b * qh * qw;
    const sum = tf.add(tf.add(attn.reshape([rows, kh, kw]), relH.reshape([rows, kh, 1])), relW.reshape([rows, 1, kw]));
    return sum.reshape([b, qh * qw, kh * kw]) as tf.Tensor3D;
  });
}
