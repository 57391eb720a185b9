import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';

/**
 * `BatchMatMul` for the wasm backend: every float32 product, batched or not, any transposes (window
 * attention's `q k^T` and `attn v`, every matmul gradient) by our SIMD GEMM (`native/assembly/gemm.ts`,
 * a 4x8 register tile over packed panels of B). tfjs-wasm runs batched or transposed products as a
 * scalar loop, and our GEMM matches or beats its XNNPACK 2-D GEMM on the shapes measured
 * (K = 96..1024). Batch broadcasting beyond "one side has a single matrix" goes back to tfjs-wasm.
 */
export function makeBatchMatMul(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const mod = kernelModuleFor(args.backend);
    if (!mod || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return previous(args);
    const ar = a.shape.length;
    const br = b.shape.length;
    const M = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
    const K = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
    const Kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
    const N = transposeB ? b.shape[br - 2] : b.shape[br - 1];
    if (K !== Kb) return previous(args);
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    let outer: number[];
    try {
      outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
    } catch {
      return previous(args);
    }
    const batchA = prod(outerA);
    const batchB = prod(outerB);
    const batch = prod(outer);
    if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return previous(args);
    const outShape = [...outer, M, N];
    const backend = mod.backend;
    // one shared B and the A rows contiguous: a single product [batch*M, K] x [K, N]
    const M2 = batchB === 1 && !transposeA ? batch * M : M;
    const batch2 = M2 === M ? batch : 1;
    const out = backend.makeOutput(outShape, 'float32');
    if (batch === 0 || M === 0 || N === 0) return out;
    const pa = mod.offset(a);
    const pb = mod.offset(b);
    const pc = mod.offset(out);
    const sam = transposeA ? 4 : K * 4;
    const sak = transposeA ? M * 4 : 4;
    const sbk = transposeB ? 4 : N * 4;
    const sbn = transposeB ? K * 4 : 4;
    const sab = batchA === 1 ? 0 : M * K * 4;
    const sbb = batchB === 1 ? 0 : K * N * 4;
    const sab2 = batch2 === 1 ? 0 : sab;
    const sbb2 = batch2 === 1 ? 0 : sbb;
    const packBytes = Math.ceil(N / 8) * Math.max(K, 1) * 32;
    const threads = threadsFor(mod, batch2 * M2 * N * Math.max(K, 1));
    const base = [pa, pb, pc, M2, N, K, sam, sak, sbk, sbn, sab2, sbb2];
    let jobs: number[][];
    if (batch2 >= threads) {
      jobs = splitRange(batch2, threads).map(([b0, b1], t) => [...base, mod.scratch(packBytes, t), b0, b1, 0, M2]);
    } else {
      jobs = splitRange(M2, threads, 4).map(([m0, m1], t) => [...base, mod.scratch(packBytes, t), 0, batch2, m0, m1]);
    }
    mod.run('bmm', jobs);
    return out;
  };
}
