import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
// what importing the package registers for 'wasm': the training kernels tfjs-wasm lacks, and our kernels over tfjs-wasm's
import '../../src/backends/fastKernels.js';

/** The backends every suite runs on. */
export const BACKENDS = ['cpu', 'wasm'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Switch the active backend (initialising wasm on first use). */
export async function useBackend(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`could not initialise the ${name} backend`);
  await tf.ready();
}
