import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The pretraining lab. `npm run build:lab` builds it into dist-lab/ (relative asset paths: any static
 * server serves the folder, e.g. `npx vite preview --config examples/lab/vite.config.ts`);
 * `npx vite examples/lab` serves it for development. The page imports this checkout's sources (`src/`);
 * an application imports the same names from 'visbackbones'.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: fileURLToPath(new URL('../../dist-lab', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8192,
  },
  preview: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
  server: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
  logLevel: 'error',
});
