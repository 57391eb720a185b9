/**
 * Bundles gpu/webgpuCheck.ts (tfjs core + cpu + webgpu backends, our src, the test helpers it reuses)
 * into ONE ES module, .gpu/webgpuCheck.mjs, runnable by a bare `node` with no node_modules.
 *
 *     node gpu/build.mjs [outfile]
 *
 * - `vitest` (imported by test/helpers/fixtures.ts for one helper) is replaced by gpu/vitestShim.ts.
 * - `import.meta.url` inside repo files is rewritten to that file's own URL under the repo root found
 *   at run time (VB_REPO_ROOT, default the bundle's parent folder), so FIXTURES_DIR still points
 *   at test/fixtures.
 * - the `webgpu` package (dawn.node) is not bundled: the check imports it from a path at run time.
 */
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const outfile = resolve(process.argv[2] ?? join(repo, '.gpu', 'webgpuCheck.mjs'));

/** Rewrite `import.meta.url` of the repo's own sources to their original location under the repo root. */
const metaUrlPlugin = {
  name: 'repo-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.(ts|mts|js|mjs)$/ }, async (args) => {
      const rel = relative(repo, args.path);
      if (rel.startsWith('..') || rel.startsWith('node_modules') || rel.startsWith('gpu')) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return {
        contents: text.replaceAll('import.meta.url', `__vbFileUrl(${JSON.stringify(rel.split('\\').join('/'))})`),
        loader: args.path.endsWith('ts') ? 'ts' : 'js',
      };
    });
  },
};

const banner = `// visbackbones WebGPU check bundle (gpu/build.mjs). Generated: do not edit.
import { createRequire as __vbCreateRequire } from 'node:module';
import { pathToFileURL as __vbToUrl, fileURLToPath as __vbFromUrl } from 'node:url';
import { join as __vbJoin, dirname as __vbDirname } from 'node:path';
const require = __vbCreateRequire(import.meta.url);
const __vbRepoRoot = process.env.VB_REPO_ROOT || __vbJoin(__vbDirname(__vbFromUrl(import.meta.url)), '..');
const __vbFileUrl = (rel) => __vbToUrl(__vbJoin(__vbRepoRoot, rel)).href;`;

const result = await build({
  entryPoints: [join(here, 'webgpuCheck.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  mainFields: ['module', 'main'],
  alias: { vitest: join(here, 'vitestShim.ts') },
  external: ['webgpu'],
  plugins: [metaUrlPlugin],
  banner: { js: banner },
  legalComments: 'none',
  keepNames: true, // program class names (constructor.name) appear in the profile as they are in tfjs
  minify: false,
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
const inputs = Object.keys(result.metafile.inputs);
const pkgs = [
  ...new Set(
    inputs
      .filter((p) => p.includes('node_modules/'))
      .map((p) =>
        p
          .split('node_modules/')
          .pop()
          .split('/')
          .slice(0, p.includes('node_modules/@') ? 2 : 1)
          .join('/'),
      ),
  ),
].sort();
console.log(
  `wrote ${relative(process.cwd(), outfile)}: ${(bytes / 1e6).toFixed(2)} MB, ${inputs.length} inputs; packages: ${pkgs.join(', ')}`,
);
