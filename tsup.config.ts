import { copyFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2020',
  external: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', /^node:/],
  shims: false,
  // the kernel binaries (`npm run build:kernels`, run first by `npm run build`) ship as files too; the
  // bundles embed the same bytes (src/backends/native/kernelsWasm.ts), so nothing needs to fetch them
  async onSuccess() {
    for (const f of ['kernels.wasm', 'kernels-shared.wasm']) copyFileSync(`src/backends/native/${f}`, `dist/${f}`);
  },
});
