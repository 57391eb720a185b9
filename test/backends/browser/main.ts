/**
 * The page of test/backends/browserKernels.test.ts: tfjs-wasm, then the package, imported as an
 * application would; reports in `window.__vb` which of our kernels were registered on import, after
 * `fastKernelsReady()`, and how their results compare with the cpu backend's. The tfjs-wasm binaries
 * are served under `/wasm/`.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { FAST_KERNEL_NAMES, fastKernelRegistered, fastKernelsReady } from '../../../src/index.js';
import { fusedGelu } from '../../../src/backends/fusedOps.js';

/** What the page reports. */
export interface KernelPageResult {
  /** Ours not registered right after import, and whether each had a kernel (tfjs-wasm's or the package's JavaScript one) to replace. */
  notOursAtImport: { name: string; replaces: boolean }[];
  /** Ours not registered after `fastKernelsReady()` (expected none). */
  notOursWhenReady: string[];
  /** Max |wasm - cpu| for each op, and the op's reduction length (for the tolerance). */
  diffs: { op: string; maxAbs: number; k: number }[];
  /** Whether the fused GELU kernel (which has nothing to fall back to) ran on wasm. */
  fusedGeluRan: boolean;
  crossOriginIsolated: boolean;
  error?: string;
}

declare global {
  interface Window {
    __vb?: KernelPageResult;
  }
}

const OPS: { op: string; k: number; f: () => tf.Tensor }[] = [
  {
    op: 'batched matmul',
    k: 17,
    f: () => tf.matMul(tf.randomNormal([4, 33, 17], 0, 1, 'float32', 1), tf.randomNormal([4, 9, 17], 0, 1, 'float32', 2), false, true),
  },
  {
    op: 'depthwise conv 7x7',
    k: 49,
    f: () =>
      tf.depthwiseConv2d(
        tf.randomNormal([1, 11, 13, 6], 0, 1, 'float32', 3) as tf.Tensor4D,
        tf.randomNormal([7, 7, 6, 1], 0, 1, 'float32', 4) as tf.Tensor4D,
        1,
        'same',
      ),
  },
  { op: 'erf', k: 1, f: () => tf.erf(tf.randomNormal([1001], 0, 2, 'float32', 5)) },
  { op: 'softmax', k: 1, f: () => tf.softmax(tf.randomNormal([7, 45], 0, 3, 'float32', 6)) },
];

async function values(backend: string): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  await tf.ready();
  return OPS.map(({ f }) => tf.tidy(() => f().dataSync().slice() as Float32Array));
}

async function main(): Promise<KernelPageResult> {
  const notOursAtImport = FAST_KERNEL_NAMES.filter((n) => !fastKernelRegistered(n)).map((name) => ({
    name,
    replaces: tf.getKernel(name, 'wasm') !== undefined,
  }));
  setWasmPaths('/wasm/');
  const cpu = await values('cpu');
  await tf.setBackend('wasm');
  await fastKernelsReady();
  const notOursWhenReady = FAST_KERNEL_NAMES.filter((n) => !fastKernelRegistered(n));
  const wasm = await values('wasm');
  const diffs = OPS.map(({ op, k }, i) => {
    let maxAbs = 0;
    for (let j = 0; j < cpu[i].length; j++) maxAbs = Math.max(maxAbs, Math.abs(cpu[i][j] - wasm[i][j]));
    return { op, k, maxAbs: cpu[i].length === wasm[i].length ? maxAbs : Infinity };
  });
  const fusedGeluRan = tf.tidy(() => {
    const y = fusedGelu(tf.randomNormal([257], 0, 2, 'float32', 7));
    return y !== null && y.dataSync().every((v) => Number.isFinite(v));
  });
  return { notOursAtImport, notOursWhenReady, diffs, fusedGeluRan, crossOriginIsolated: self.crossOriginIsolated };
}

main()
  .then((r) => {
    window.__vb = r;
  })
  .catch((e: unknown) => {
    window.__vb = {
      notOursAtImport: [],
      notOursWhenReady: [],
      diffs: [],
      fusedGeluRan: false,
      crossOriginIsolated: false,
      error: String((e as Error)?.stack ?? e),
    };
  })
  .finally(() => {
    document.body.dataset.status = 'done';
  });
