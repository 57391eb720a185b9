import * as tf from '@tensorflow/tfjs';

/**
 * Cost model of {@link batchedMatMul} on tfjs-wasm 4.22, in multiply-adds of the batched kernel per
 * float copied. A 2-D matmul runs on XNNPACK's GEMM at ~10x the rate of the batched (3-D) or
 * `transposeB` kernel, a scalar loop; but taking a batch apart costs copies, because every wasm
 * `Slice` / `SplitV` reads its entire input: halving recursively moves `2 log2(n)` times each operand.
 * The loop of 2-D matmuls is chosen when `2 log2(n) (m + p) * LOOP_MATMUL_COPY_COST < m p` for `n`
 * products `[m, k] x [k, p]`. Measured (1 thread): `[8, 3136, 96] x [8, 96, 196]` 1190 ms batched vs
 * ~100 ms as GEMMs; `[64, 49, 96] x [64, 96, 49]` 17 ms batched vs 48 ms as GEMMs.
 */
export const LOOP_MATMUL_COPY_COST = 2.2;

/** Split `t` along axis 0 into its `n` entries by recursive halving (`log2(n)` copies of the data instead of `n`). */
function splitBatch(t: tf.Tensor3D, n: number): tf.Tensor3D[] {
  if (n === 1) return [t];
  const h = Math.floor(n / 2);
  const [lo, hi] = tf.split(t, [h, n - h], 0) as tf.Tensor3D[];
  return [...splitBatch(lo, h), ...splitBatch(hi, n - h)];
}

/**
 * `a @ b` (or `a @ b^T` with `transposeB`) for `a` `[n, m, k]` and `b` `[n, k, p]` (`[n, p, k]`), as
 * `tf.matMul` computes it, routed on tfjs-wasm to its fast 2-D GEMM where that pays: `b^T` is
 * materialised by a transpose instead of the slow transposed path, one product is a 2-D matmul, and a
 * batch of large products is a loop of 2-D matmuls (see {@link LOOP_MATMUL_COPY_COST}). Differentiable.
 */
export function batchedMatMul(a: tf.Tensor3D, b: tf.Tensor3D, transposeB = false): tf.Tensor3D {
  return tf.tidy(() => {
    const [n, m, k] = a.shape;
    const p = transposeB ? b.shape[1] : b.shape[2];
    // the routing pays on tfjs-wasm's kernels only; other backends batch well themselves
    if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, false, transposeB);
    if (n > 1 && 2 * Math.log2(n) * (m + p) * LOOP_MATMUL_COPY_COST >= m * p) return tf.matMul(a, b, false, transposeB);
    const bt = (transposeB ? b.transpose([0, 2, 1]) : b) as tf.Tensor3D;
    const mm = (x: tf.Tensor3D, y: tf.Tensor3D) =>
      tf.matMul(x.reshape([m, k]) as tf.Tensor2D, y.reshape([k, p]) as tf.Tensor2D).reshape([1, m, p]);
    if (n === 1) return mm(a, bt) as tf.Tensor3D;
    const as = splitBatch(a, n);
    const bs = splitBatch(bt, n);
    return tf.concat(
      as.map((x, i) => mm(x, bs[i])),
      0,
    ) as tf.Tensor3D;
  });
}
