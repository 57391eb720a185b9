/**
 * Our wasm kernels in a real browser (Debian's Chromium, headless, through playwright-core): the
 * package registers the kernels that replace tfjs-wasm's on import, compiles its module
 * asynchronously (synchronous compilation is refused on a page's main thread), registers the rest when
 * it is ready, and then computes what the cpu backend computes. The page is test/backends/browser,
 * built with Vite from this checkout's sources. Skips, saying why, when /usr/bin/chromium is absent.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../helpers/staticServer.js';
import type { KernelPageResult } from './browser/main.js';

const CHROMIUM = process.env.VB_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const TFJS_WASM = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');

if (!HAVE_CHROMIUM)
  console.warn(`browser kernel test skipped: ${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`);

describe.skipIf(!HAVE_CHROMIUM)(
  `our wasm kernels in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `skipped: ${CHROMIUM} not found`})`,
  () => {
    let tmp: string;
    let server: Server;
    let browser: any;
    let result: KernelPageResult;
    let log = '';

    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'vb-kernels-browser-'));
      const { build } = await import('vite');
      await build({
        configFile: join(HERE, 'browser', 'vite.config.ts'),
        build: { outDir: join(tmp, 'site'), emptyOutDir: true },
        logLevel: 'error',
      });
      server = await serve([
        ['/wasm/', TFJS_WASM],
        ['/', join(tmp, 'site')],
      ]);
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
      });
      const page = await browser.newPage();
      const lines: string[] = [];
      page.on('console', (m: { text(): string }) => lines.push(m.text()));
      page.on('pageerror', (e: Error) => lines.push(`pageerror: ${e.message}`));
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => document.body.dataset.status === 'done', null, { timeout: 120_000 });
      result = await page.evaluate(() => window.__vb!);
      log = lines.join('\n');
    }, 240_000);

    afterAll(async () => {
      await browser?.close();
      await new Promise((r) => (server ? server.close(r) : r(null)));
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('registers the replacing kernels on import and the others once the asynchronous compile is done', () => {
      expect(result.error, log).toBeUndefined();
      // the module compiles asynchronously: the kernels with nothing to fall back to wait for it ...
      expect(result.notOursAtImport.length, log).toBeGreaterThan(0);
      // ... while every kernel that replaces one (tfjs-wasm's, or the package's JavaScript training kernels) is ours from the start
      expect(result.notOursAtImport.filter((k) => k.replaces)).toEqual([]);
      expect(result.notOursWhenReady).toEqual([]);
    });

    it('computes what the cpu backend computes, on the page main thread', () => {
      expect(result.error, log).toBeUndefined();
      expect(result.fusedGeluRan).toBe(true);
      expect(result.diffs.length).toBeGreaterThan(0);
      for (const d of result.diffs) expect(d.maxAbs, d.op).toBeLessThan(2e-6 * d.k);
      console.log(
        `browser wasm vs cpu: ${result.diffs.map((d) => `${d.op} ${d.maxAbs.toExponential(2)}`).join(', ')} (crossOriginIsolated ${result.crossOriginIsolated})`,
      );
    });
  },
);
