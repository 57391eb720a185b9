import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchedMatMul, LOOP_MATMUL_COPY_COST } from '../../src/layers/batchedMatMul.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare } from '../helpers/fixtures.js';

/** `a @ b` (or `a @ b^T`) for every batch entry, with loops. */
function direct(a: Float32Array, b: Float32Array, [n, m, k]: number[], p: number, transposeB: boolean): Float32Array {
  const out = new Float32Array(n * m * p);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < p; c++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += a[(i * m + r) * k + j] * (transposeB ? b[(i * p + c) * k + j] : b[(i * k + j) * p + c]);
        out[(i * m + r) * p + c] = s;
      }
    }
  }
  return out;
}

const CASES = [
  { name: 'one product (2-D GEMM)', n: 1, m: 33, k: 17, p: 9 },
  { name: 'small products (batched kernel)', n: 6, m: 7, k: 5, p: 4 },
  { name: `large products (loop of GEMMs: n (m + p) ${LOOP_MATMUL_COPY_COST} < m p)`, n: 3, m: 128, k: 64, p: 128 },
];

for (const backend of BACKENDS) {
  describe(`batchedMatMul on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const { name, n, m, k, p } of CASES) {
      for (const transposeB of [false, true]) {
        it(`${name}, transposeB=${transposeB}: values and gradients`, () => {
          const a = tf.randomNormal([n, m, k], 0, 1, 'float32', 1) as tf.Tensor3D;
          const b = tf.randomNormal(transposeB ? [n, p, k] : [n, k, p], 0, 1, 'float32', 2) as tf.Tensor3D;
          const before = tf.memory().numTensors;
          const y = batchedMatMul(a, b, transposeB);
          expect(tf.memory().numTensors).toBe(before + 1);
          expect(y.shape).toEqual([n, m, p]);
          const ref = tf.tensor(direct(a.dataSync() as Float32Array, b.dataSync() as Float32Array, [n, m, k], p, transposeB), [n, m, p]);
          expect(compare(y, ref, 1e-4, 1e-5).worstExcess).toBeLessThanOrEqual(0);
          // d/da sum(y * g) = g @ b^T: compare with tfjs's own matMul gradient
          const g = tf.randomNormal([n, m, p], 0, 1, 'float32', 3);
          const [ga, gb] = tf.grads((x: tf.Tensor, w: tf.Tensor) =>
            tf.sum(tf.mul(batchedMatMul(x as tf.Tensor3D, w as tf.Tensor3D, transposeB), g)),
          )([a, b]);
          const [ra, rb] = tf.grads((x: tf.Tensor, w: tf.Tensor) =>
            tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, w as tf.Tensor3D, false, transposeB), g)),
          )([a, b]);
          expect(compare(ga, ra, 1e-4, 1e-5).worstExcess).toBeLessThanOrEqual(0);
          expect(compare(gb, rb, 1e-4, 1e-5).worstExcess).toBeLessThanOrEqual(0);
          tf.dispose([a, b, y, ref, g, ga, gb, ra, rb]);
        });
      }
    }
  });
}
