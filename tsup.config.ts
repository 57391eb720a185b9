import { copyFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { defineConfig, type Options } from 'tsup';

const require = createRequire(import.meta.url);
const external = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', /^node:/];

/**
 * The browser build (the `browser` export condition, which esbuild, Vite and webpack pick when they
 * bundle for a page): Node built-ins become stubs whose functions throw, so Node-only code (files,
 * the hub cache and its downloads, worker threads) bundles without flags and fails with a clear message
 * if called.
 */
const nodeStubs = {
  name: 'node-builtin-stubs',
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- esbuild's PluginBuild, not a dependency of the config
  setup(build: { onResolve: (...a: any[]) => void; onLoad: (...a: any[]) => void }) {
    build.onResolve({ filter: /^node:/ }, (args: { path: string }) => ({ path: args.path.slice(5), namespace: 'node-stub' }));
    // the hub client is used by the Node download path only (its own build imports fs, os, stream)
    build.onResolve({ filter: /^@huggingface\/hub$/ }, () => ({ path: 'hub', namespace: 'node-only' }));
    build.onLoad({ filter: /.*/, namespace: 'node-only' }, () => ({
      contents: "throw new Error('@huggingface/hub downloads run in Node only');\n",
      loader: 'js',
    }));
    build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args: { path: string }) => {
      const id = args.path;
      const names = builtinModules.includes(id)
        ? Object.keys(require(id)).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default')
        : [];
      const fail = `() => { throw new Error('node:${id} is not available in a browser'); }`;
      const lines = names.map((n) => `export const ${n} = ${fail};`);
      return { contents: `${lines.join('\n')}\nexport default { ${names.join(', ')} };\n`, loader: 'js' };
    });
  },
};

const common: Options = {
  sourcemap: true,
  target: 'es2020',
  external,
  shims: false,
  // keep `node:` on built-ins: bundlers treat a bare `fs` as a package to find
  removeNodeProtocol: false,
};

export default defineConfig([
  {
    ...common,
    entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    // the kernel binaries (`npm run build:kernels`, run first by `npm run build`) ship as files too; the
    // bundles embed the same bytes (src/backends/native/kernelsWasm.ts), so nothing needs to fetch them
    async onSuccess() {
      for (const f of ['kernels.wasm', 'kernels-shared.wasm']) copyFileSync(`src/backends/native/${f}`, `dist/${f}`);
    },
  },
  {
    ...common,
    entry: { index: 'src/index.ts' },
    outDir: 'dist/browser',
    format: ['esm'],
    platform: 'browser',
    external: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'],
    noExternal: ['@huggingface/hub'],
    define: { 'import.meta.url': '""', __filename: 'undefined' },
    esbuildPlugins: [nodeStubs as never],
  },
]);
