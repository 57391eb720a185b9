import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/**
 * The project's vitest config with WebAssembly relaxed SIMD switched on in the test processes
 * (`--experimental-wasm-relaxed-simd`, needed by Node 20 and 21; Node >= 22 has it by default), so
 * our kernels load their relaxed-SIMD build (fused multiply-adds). Run by `npm test` on the kernel
 * parity suites only: `vitest run -c test/backends/vitest.relaxed.config.ts`.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/backends/relaxedSimd.test.ts', 'test/backends/fastKernels.test.ts', 'test/backends/convBackprop.test.ts'],
      execArgv: ['--experimental-wasm-relaxed-simd'],
    },
  }),
);
