/**
 * Vitest setup that puts tfjs-wasm's own kernels back (our kernels are registered on import) before
 * any test runs, so that the model suites (fixture parity, training) also cover the stock kernels on
 * the wasm backend: `npx vitest run -c test/backends/vitest.stock.config.ts test/models`.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FAST_KERNEL_NAMES, fastKernelRegistered, unregisterFastKernels } from '../../src/backends/fastKernels.js';

unregisterFastKernels();
const still = FAST_KERNEL_NAMES.filter((k) => fastKernelRegistered(k));
if (still.length) throw new Error(`stockKernels.setup: still registered after unregisterFastKernels(): ${still.join(', ')}`);
// as without this file: the cpu backend is the default until a suite picks one
await tf.setBackend('cpu');
