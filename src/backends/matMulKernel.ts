import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelModule, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';

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
    return (mod && product(mod, a, b, transposeA, transposeB, null)) ?? previous(args);
  };
}

/**
 * `_FusedMatMul` (what `tf.fused.matMul` runs) with a linear activation and a bias that is one row of
 * `N` values: the product by our GEMM with the bias added as each output tile is stored, so
 * `matMul(a, b) + bias` costs no extra pass over the output. Other activations, PReLU weights, other
 * bias shapes go to `previous` (tfjs-wasm's, which runs XNNPACK or its batched loop).
 */
export function makeFusedMatMul(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const { transposeA, transposeB, activation } = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const mod = kernelModuleFor(args.backend);
    if (!mod || (activation ?? 'linear') !== 'linear' || preluActivationWeights) return previous(args);
    const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
    const row =
      !bias || (bias.dtype === 'float32' && bias.shape.length >= 1 && bias.shape[bias.shape.length - 1] === n && prod(bias.shape) === n);
    if (!row) return previous(args);
    return product(mod, a, b, transposeA, transposeB, bias ?? null) ?? previous(args);
  };
}

/** Rows of B the GEMM packs per pass over K (`KC` in `native/assembly/gemm.ts`): the packing scratch holds that many. */
const GEMM_KC = 512;

/** `op(a) op(b) (+ bias)` into a new tensor, or null for a case our GEMM does not take. */
function product(
  mod: KernelModule,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: tf.TensorInfo | null,
): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const ar = a.shape.length;
  const br = b.shape.length;
  const M = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const K = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const Kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const N = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if (K !== Kb) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outer: number[];
  try {
    outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batchA = prod(outerA);
  const batchB = prod(outerB);
  const batch = prod(outer);
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
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
  const pbias = bias ? mod.offset(bias) : 0;
  const sam = transposeA ? 4 : K * 4;
  const sak = transposeA ? M * 4 : 4;
  const sbk = transposeB ? 4 : N * 4;
  const sbn = transposeB ? K * 4 : 4;
  const sab = batchA === 1 ? 0 : M * K * 4;
  const sbb = batchB === 1 ? 0 : K * N * 4;
  const sab2 = batch2 === 1 ? 0 : sab;
  const sbb2 = batch2 === 1 ? 0 : sbb;
  const packBytes = Math.ceil(N / 8) * Math.min(Math.max(K, 1), GEMM_KC) * 32;
  const threads = threadsFor(mod, batch2 * M2 * N * Math.max(K, 1));
  const base = [pa, pb, pc, M2, N, K, sam, sak, sbk, sbn, sab2, sbb2];
  let jobs: number[][];
  if (batch2 >= threads) {
    jobs = splitRange(batch2, threads).map(([b0, b1], t) => [...base, mod.scratch(packBytes, t), b0, b1, 0, M2, pbias, 0]);
  } else if (M2 < N && N >= 16 * threads) {
    // fewer rows than columns (the last stages' tokens): each thread takes a block of columns and packs only
    // its part of B, where splitting rows would have every thread pack all of it
    jobs = splitRange(N, threads, 8).map(([j0, j1], t) => {
      const nj = j1 - j0;
      const bytes = Math.ceil(nj / 8) * Math.min(Math.max(K, 1), GEMM_KC) * 32;
      return [
        pa,
        pb + j0 * sbn,
        pc + j0 * 4,
        M2,
        nj,
        K,
        sam,
        sak,
        sbk,
        sbn,
        sab2,
        sbb2,
        mod.scratch(bytes, t),
        0,
        batch2,
        0,
        M2,
        pbias ? pbias + j0 * 4 : 0,
        N,
      ];
    });
  } else {
    jobs = splitRange(M2, threads, 4).map(([m0, m1], t) => [...base, mod.scratch(packBytes, t), 0, batch2, m0, m1, pbias, 0]);
  }
  mod.run('bmm', jobs);
  return out;
}
