import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/** The project's vitest config plus fastKernels.setup.ts: every suite runs with our wasm kernels registered. */
export default mergeConfig(
  base,
  defineConfig({
    test: { setupFiles: ['test/backends/fastKernels.setup.ts'] },
  }),
);
