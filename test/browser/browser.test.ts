/**
 * End-to-end test of examples/browser: convert the swin_p4w4_64 fixture checkpoint with the CLI,
 * build the page with Vite, serve both on localhost and drive Debian's Chromium (headless, through
 * playwright-core) on the webgl backend, and on webgpu when the browser offers an adapter. Skips,
 * saying why, when /usr/bin/chromium is absent (`apt-get install chromium`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve } from '../helpers/staticServer.js';
import { runCli } from '../../src/cli/main.js';
import { useBackend } from '../helpers/backends.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

const CHROMIUM = process.env.VB_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ROOT = join(FIXTURES_DIR, '..', '..');
const FIX = join(FIXTURES_DIR, 'swin_p4w4_64');
const CASE = JSON.parse(readFileSync(join(FIX, 'case.json'), 'utf8'));

if (!HAVE_CHROMIUM) console.warn(`browser test skipped: ${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`);

describe.skipIf(!HAVE_CHROMIUM)(
  `browser example in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `skipped: ${CHROMIUM} not found`})`,
  () => {
    let tmp: string;
    let server: Server;
    let base: string;
    let context: any;

    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'vb-browser-'));
      await useBackend('cpu');
      const errs: string[] = [];
      const code = await runCli(
        [
          'convert',
          '--timm',
          join(FIX, 'weights.safetensors'),
          '--model',
          'swin_tiny_patch4_window7_224',
          '--config',
          join(FIX, 'case.json'),
          '--out',
          join(tmp, 'model'),
          '--backend',
          'cpu',
        ],
        { out: () => {}, err: (l) => errs.push(l) },
      );
      expect(code, errs.join('\n')).toBe(0);
      const { build } = await import('vite');
      await build({
        configFile: join(ROOT, 'examples', 'browser', 'vite.config.ts'),
        build: { outDir: join(tmp, 'site'), emptyOutDir: true },
        logLevel: 'error',
      });
      server = await serve([
        ['/model/', join(tmp, 'model')],
        ['/check/', FIX],
        ['/', join(tmp, 'site')],
      ]);
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { chromium } = await import('playwright-core');
      context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: (
          process.env.VB_CHROMIUM_ARGS ??
          '--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run --disable-quic --enable-unsafe-swiftshader --use-angle=swiftshader'
        ).split(' '),
      });
    }, 240_000);

    afterAll(async () => {
      await context?.close();
      await new Promise((r) => (server ? server.close(r) : r(null)));
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    async function openPage(query: string) {
      const page = await context.newPage();
      const consoleLines: string[] = [];
      page.on('console', (m: { text(): string }) => consoleLines.push(m.text()));
      page.on('pageerror', (e: Error) => consoleLines.push(`pageerror: ${e.message}`));
      await page.goto(`${base}/?${query}`);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: 120_000 });
      const result = await page.evaluate(() => (window as any).__vb);
      const log = await page.textContent('#log');
      return { page, result, log: `${log}\n${consoleLines.join('\n')}` };
    }

    async function checkBackend(backend: string) {
      const { page, result, log } = await openPage(
        `backend=${backend}&model=/model/&check=/check/io.safetensors&atol=${CASE.atol}&rtol=${CASE.rtol}`,
      );
      expect(result.error, log).toBeUndefined();
      expect(result.backend).toBe(backend);
      console.log(
        `browser ${backend}: reference logits max abs err ${result.check.maxAbsErr} (atol ${CASE.atol}, rtol ${CASE.rtol}), ${result.millis.toFixed(0)} ms`,
      );
      expect(result.check.worstExcess, `max abs err ${result.check.maxAbsErr}`).toBeLessThanOrEqual(0);
      expect(result.features.map((f: { shape: number[] }) => f.shape)).toEqual([
        [1, 16, 16, 16],
        [1, 8, 8, 32],
        [1, 4, 4, 64],
      ]);
      for (const f of result.features) expect([f.rgbMin, f.rgbMax]).toEqual([0, 1]);
      const a = result.attention;
      expect([a.stage, a.block, a.window, a.shift, a.grid]).toEqual([0, 1, [4, 4], [2, 2], [16, 16]]);
      expect(a.rowSums.length).toBe(16 * 16);
      for (const s of a.rowSums) expect(Math.abs(s - 1)).toBeLessThan(1e-4);
      // the canvases were drawn: the attention canvas is not blank
      const painted = await page.evaluate(() => {
        const c = document.getElementById('attention') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set<number>();
        for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return { w: c.width, h: c.height, colours: seen.size };
      });
      expect(painted.w).toBeGreaterThan(0);
      expect(painted.colours).toBeGreaterThan(16);
      await page.close();
    }

    it('webgl: the converted model reproduces the reference logits; feature maps and window attention are drawn', async () => {
      await checkBackend('webgl');
    }, 180_000);

    it('webgpu: the same, when the browser offers an adapter', async (ctx) => {
      const page = await context.newPage();
      await page.goto(`${base}/?backend=cpu&model=/model/`);
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as any).gpu;
        if (!gpu) return 'navigator.gpu is undefined';
        const a = await gpu.requestAdapter();
        return a ? '' : 'requestAdapter() returned null';
      });
      await page.close();
      if (adapter) {
        console.warn(`webgpu check skipped: ${adapter}`);
        ctx.skip();
        return;
      }
      await checkBackend('webgpu');
    }, 180_000);

    it('a generated image on webgl: logits for one image, features and attention', async () => {
      const { page, result, log } = await openPage('backend=webgl&model=/model/&seed=3&index=5');
      expect(result.error, log).toBeUndefined();
      expect(result.logits.length).toBe(1);
      expect(result.logits[0].length).toBe(10);
      expect(result.features.length).toBe(3);
      expect(result.attention.row.length).toBe(16);
      if (process.env.VB_SCREENSHOT) await page.screenshot({ path: process.env.VB_SCREENSHOT, fullPage: true });
      await page.close();
    }, 120_000);
  },
);
