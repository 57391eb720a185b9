import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { fusedGrn } from '../../src/backends/fusedAttention.js';
import { fusedLayerNorm } from '../../src/backends/fusedOps.js';
import { kernelModuleFor } from '../../src/backends/kernelModule.js';
import { useWasm } from '../../src/backends/wasmThreads.js';
import { biasMaskSoftmax } from '../../src/layers/attention.js';
import { on, randn } from './kernelTestUtils.js';

/**
 * The softmax, fused bias + mask + softmax, bias-adding GEMM and elementwise kernels give the same
 * numbers when split across 2 threads (the threaded tfjs-wasm binary in Node) as on 1: shapes of
 * SwinV2-T's first stage, large enough for each kernel to split its rows or its one long row, and
 * GEMMs with fewer rows than columns, which split by column blocks.
 */

/** SwinV2-T stage-1 sized work for each of those kernels, with gradients. */
function workload(): tf.Tensor[] {
  const [g, heads, nW, n] = [192, 3, 64, 64];
  const attn = tf.tensor3d(randn(g * n * n, 1, 3), [g, n, n]);
  const bias = tf.tensor3d(randn(heads * n * n, 2), [heads, n, n]);
  const mask = tf.tensor3d(
    Float32Array.from(randn(nW * n * n, 3), (v) => (v > 0.5 ? -100 : 0)),
    [nW, n, n],
  );
  const r = tf.tensor3d(randn(g * n * n, 4), [g, n, n]);
  const x = tf.tensor2d(randn(4096 * 96, 5), [4096, 96]);
  const w = tf.tensor2d(randn(96 * 384, 6, 0.1), [96, 384]);
  const b = tf.tensor1d(randn(384, 7));
  const loss = (a: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(biasMaskSoftmax(a, bb, mask, heads), r));
  const y = tf.fused.matMul({ a: x, b: w, bias: b });
  return [
    tf.softmax(attn),
    biasMaskSoftmax(attn, bias, mask, heads),
    ...tf.grads(loss)([attn, bias]),
    y,
    tf.add(y, tf.sigmoid(y)),
    tf.div(attn, tf.sqrt(tf.sum(tf.square(attn), -1, true))),
    tf.mul(attn.reshape([nW, heads, n, n]), tf.tensor3d([0.5, 2, 3], [heads, 1, 1])),
    tf.relu(tf.sub(y, 0.25)),
    // fewer rows than columns: split by column blocks (ragged last block, transposed B, shared B over a batch)
    tf.fused.matMul({ a: x.slice([0, 0], [64, 96]), b: tf.tensor2d(randn(96 * 3001, 8), [96, 3001]), bias: tf.tensor1d(randn(3001, 9)) }),
    tf.matMul(x.slice([0, 0], [64, 96]), tf.tensor2d(randn(1003 * 96, 10), [1003, 96]), false, true),
    tf.matMul(tf.tensor3d(randn(3 * 30 * 256, 11), [3, 30, 256]), tf.tensor2d(randn(256 * 520, 12), [256, 520])),
    // a weight gradient (K = 4096 rows: eight passes over K) and a bias gradient (the sum split by columns)
    tf.matMul(x, y, true, false),
    tf.sum(y, 0),
    // depthwise 7x7 with padding (each thread pads its own band of rows), GRN over two images
    tf.depthwiseConv2d(x.reshape([1, 64, 64, 96]) as tf.Tensor4D, tf.tensor4d(randn(49 * 96, 13), [7, 7, 96, 1]), 1, 3),
    fusedGrn(x.reshape([2, 32, 64, 96]), tf.tensor1d(randn(96, 14)), tf.tensor1d(randn(96, 15)), 1e-6)!,
    // LayerNorm's two gradient kernels
    ...tf.grads((a: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(fusedLayerNorm(a, ww, tf.zeros([384]), 1e-5)!, y)))([y, b]),
  ];
}

describe('our kernels on 2 threads', () => {
  it('give results equal to 1 thread', async () => {
    await useWasm({ threads: 1, fastKernels: true });
    const one = await on('wasm', workload);
    await useWasm({ threads: 2, fastKernels: true });
    const mod = kernelModuleFor(tf.backend())!;
    expect(mod.threads).toBe(2);
    // record which kernels split their work
    const split = new Set<string>();
    const run = mod.run.bind(mod);
    mod.run = (name, jobs) => {
      if (jobs.length > 1) split.add(name);
      run(name, jobs);
    };
    const before = tf.memory().numTensors;
    const two = await on('wasm', workload);
    mod.run = run;
    for (const k of [
      'biasMaskSoftmax',
      'softmaxGrad',
      'bmm',
      'binary',
      'unary',
      'reduceSum',
      'depthwiseConv',
      'grn',
      'layerNormGradX',
      'layerNormGradW',
    ])
      expect(split.has(k), `${k} split across threads`).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(two.length).toBe(one.length);
    two.forEach((v, i) => {
      let worst = 0;
      for (let j = 0; j < v.length; j++) worst = Math.max(worst, Math.abs(v[j] - one[i][j]));
      expect(worst, `output ${i} differs by up to ${worst}`).toBe(0);
    });
    await useWasm({ threads: 1, fastKernels: true });
  });
});
