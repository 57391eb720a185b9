import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

/**
 * The project's vitest config plus stockKernels.setup.ts: every suite runs with tfjs-wasm's own
 * kernels on the wasm backend (the default run has ours, registered on import).
 */
export default mergeConfig(
  base,
  defineConfig({
    test: { setupFiles: ['test/backends/stockKernels.setup.ts'] },
  }),
);
