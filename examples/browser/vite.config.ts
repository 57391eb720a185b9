import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The browser example. `npx vite examples/browser` serves it (put a converted model directory in
 * examples/browser/public/model/, or pass ?model=URL); `npx vite build examples/browser` builds it.
 * The page imports this checkout's sources (`src/`); an application imports the same names from
 * 'visbackbones'.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: { target: 'es2022', chunkSizeWarningLimit: 4096 },
  logLevel: 'warn',
});
