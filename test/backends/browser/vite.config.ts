import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The page of test/backends/browserKernels.test.ts (our wasm kernels in a browser), built from this checkout's sources. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: { target: 'es2022', chunkSizeWarningLimit: 8192 },
  logLevel: 'error',
});
