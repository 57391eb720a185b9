/**
 * The package as a new user gets it: `npm run build`, `npm pack`, the tarball unpacked into an empty
 * project made the way `npm init -y` makes one (`"type": "commonjs"`), with this checkout's tfjs
 * reachable. In it: the README's Quick start snippets run as they stand, and a small browser entry
 * bundles with esbuild and Vite (no flags, no warnings) and runs in headless Chromium (skipped, saying
 * why, when /usr/bin/chromium is absent).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../helpers/staticServer.js';

const ROOT = join(__dirname, '..', '..');
const CHROMIUM = process.env.VB_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);

/** The README's fenced blocks whose first line is `// <file>` (the file name the snippet says to save it as). */
export function readmeSnippets(): Map<string, string> {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const out = new Map<string, string>();
  const re = /^```(?:js|ts|javascript|typescript)\n(\/\/ ([\w.-]+\.(?:mjs|mts))\n[\s\S]*?)^```/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) out.set(m[2], m[1]);
  return out;
}

const BROWSER_ENTRY = `import * as tf from '@tensorflow/tfjs';
import { createModel } from 'visbackbones';

(async () => {
  try {
    await tf.setBackend('cpu');
    const model = createModel('swin_tiny_patch4_window7_224', { imgSize: 64, windowSize: 4, embedDim: 16, depths: [1, 1], numHeads: [1, 2], numClasses: 10 });
    const logits = model.forwardLogits(tf.randomNormal([1, 64, 64, 3]));
    const values = Array.from(await logits.data());
    window.__vb = { shape: logits.shape, finite: values.every(Number.isFinite), spread: Math.max(...values) - Math.min(...values) };
  } catch (e) {
    window.__vb = { error: String(e && e.stack || e) };
  }
  document.body.dataset.status = 'done';
})();
`;

let tmp: string;
let proj: string;

/** `cmd args` in `cwd`, its output returned; a failure throws with stdout and stderr. */
function sh(cmd: string, args: string[], cwd: string, timeout = 300_000): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      timeout,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`, { cause: e });
  }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vb-pack-'));
  let t = performance.now();
  if (!process.env.VB_PACKAGING_NO_BUILD) sh('npm', ['run', 'build'], ROOT, 600_000);
  const tBuild = performance.now() - t;
  t = performance.now();
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', tmp], ROOT)) as { filename: string }[];
  proj = join(tmp, 'proj');
  mkdirSync(join(proj, 'node_modules'), { recursive: true });
  // what `npm init -y` writes (npm 10+): CommonJS by default
  writeFileSync(
    join(proj, 'package.json'),
    JSON.stringify({ name: 'proj', version: '1.0.0', main: 'index.js', type: 'commonjs', license: 'ISC' }, null, 2),
  );
  sh('tar', ['xzf', join(tmp, packed[0].filename), '-C', join(proj, 'node_modules')], tmp);
  sh('mv', [join(proj, 'node_modules', 'package'), join(proj, 'node_modules', 'visbackbones')], tmp);
  // the installed peer and dependencies: this checkout's (offline)
  for (const scope of ['@tensorflow', '@huggingface'])
    symlinkSync(join(ROOT, 'node_modules', scope), join(proj, 'node_modules', scope), 'dir');
  console.log(`packaging: build ${(tBuild / 1000).toFixed(1)} s, pack + install ${((performance.now() - t) / 1000).toFixed(1)} s`);
}, 660_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships the built entry points, the browser build and the kernels; no sources or tests', () => {
    const pkgDir = join(proj, 'node_modules', 'visbackbones');
    for (const f of [
      'dist/index.js',
      'dist/index.cjs',
      'dist/index.d.ts',
      'dist/browser/index.js',
      'dist/cli.js',
      'dist/kernels.wasm',
      'bin/visbackbones.js',
      'README.md',
    ]) {
      expect(existsSync(join(pkgDir, f)), f).toBe(true);
    }
    expect(existsSync(join(pkgDir, 'src'))).toBe(false);
    expect(existsSync(join(pkgDir, 'test'))).toBe(false);
  });

  it('the README Quick start snippets run as they stand in an `npm init -y` project', () => {
    const snippets = readmeSnippets();
    expect([...snippets.keys()].sort()).toEqual(['quickstart.mjs', 'quickstart.mts']);
    for (const [file, code] of snippets) writeFileSync(join(proj, file), code);
    const js = sh(process.execPath, ['quickstart.mjs'], proj, 120_000);
    expect(js).toMatch(/\[ 1, 10 \]/);
    const tsx = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
    const mts = sh(process.execPath, [tsx, 'quickstart.mts'], proj, 120_000);
    expect(mts).toMatch(/\[ 1, 10 \]/);
    // and the TypeScript one type-checks against the published .d.ts, as a user's tsc would see it
    writeFileSync(
      join(proj, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: ['quickstart.mts'],
      }),
    );
    sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], proj, 240_000);
  }, 600_000);

  it('a browser entry bundles with esbuild without flags or warnings', async () => {
    writeFileSync(join(proj, 'entry.js'), BROWSER_ENTRY);
    const esbuild = await import('esbuild');
    const r = await esbuild.build({
      entryPoints: [join(proj, 'entry.js')],
      bundle: true,
      outfile: join(proj, 'esbuild', 'app.js'),
      absWorkingDir: proj,
      logLevel: 'silent',
    });
    expect(r.errors).toEqual([]);
    expect(r.warnings.map((w) => `${w.text} (${w.location?.file}:${w.location?.line})`)).toEqual([]);
    writeFileSync(
      join(proj, 'esbuild', 'index.html'),
      '<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script src="app.js"></script></body></html>',
    );
  }, 120_000);

  it('a browser entry bundles with Vite without warnings', async () => {
    writeFileSync(
      join(proj, 'index.html'),
      '<!doctype html><html><head><link rel="icon" href="data:,"></head><body><script type="module" src="./entry.js"></script></body></html>',
    );
    const { build, createLogger } = await import('vite');
    const logger = createLogger('warn', { allowClearScreen: false });
    const warnings: string[] = [];
    logger.warn = (msg) => warnings.push(msg);
    logger.warnOnce = (msg) => warnings.push(msg);
    await build({
      root: proj,
      configFile: false,
      logLevel: 'warn',
      customLogger: logger,
      build: { outDir: join(proj, 'vite'), emptyOutDir: true, chunkSizeWarningLimit: 1e9 },
    });
    expect(warnings).toEqual([]);
  }, 240_000);

  describe.skipIf(!HAVE_CHROMIUM)(
    `the bundles in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `skipped: ${CHROMIUM} not found`})`,
    () => {
      let server: Server;
      let base: string;
      let browser: any;
      beforeAll(async () => {
        server = await serve([
          ['/esbuild/', join(proj, 'esbuild')],
          // Vite's default base is '/': its page is served at the root
          ['/', join(proj, 'vite')],
        ]);
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const { chromium } = await import('playwright-core');
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
        });
      }, 120_000);
      afterAll(async () => {
        await browser?.close();
        await new Promise((r) => (server ? server.close(r) : r(null)));
      });

      for (const bundler of ['esbuild', 'vite']) {
        it(`${bundler}: builds a tiny model and gets logits`, async () => {
          const page = await browser.newPage();
          const errors: string[] = [];
          page.on('pageerror', (e: Error) => errors.push(e.message));
          page.on('console', (m: { type(): string; text(): string }) => m.type() === 'error' && errors.push(m.text()));
          await page.goto(bundler === 'vite' ? `${base}/index.html` : `${base}/${bundler}/index.html`);
          await page.waitForFunction(() => document.body.dataset.status === 'done', null, { timeout: 60_000 });
          const result = await page.evaluate(() => (window as unknown as { __vb: Record<string, unknown> }).__vb);
          expect(result.error, errors.join('\n')).toBeUndefined();
          expect(result.shape).toEqual([1, 10]);
          expect(result.finite).toBe(true);
          expect(result.spread as number).toBeGreaterThan(0);
          expect(errors).toEqual([]);
          await page.close();
        }, 180_000);
      }
    },
  );
});
