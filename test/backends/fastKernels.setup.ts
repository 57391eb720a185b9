/**
 * Vitest setup that registers our wasm kernels before any test runs, so that the model suites
 * (fixture parity, training) exercise them on the wasm backend:
 * `npx vitest run -c test/backends/vitest.fast.config.ts test/models`.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../src/backends/wasmKernels.js';
import { registerFastKernels } from '../../src/backends/fastKernels.js';

await registerFastKernels();
// as without this file: the cpu backend is the default until a suite picks one
await tf.setBackend('cpu');
