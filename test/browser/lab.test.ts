/**
 * End-to-end test of the pretraining lab (examples/lab): build it with Vite into dist-lab/ (what
 * `npm run build:lab` does), serve the folder on 127.0.0.1 and drive Debian's Chromium (headless,
 * through playwright-core): 30 SimMIM steps on wasm lower the loss and draw the reconstructions, the run
 * saved to IndexedDB restores with identical weights after a reload, and the downloaded backbone is a
 * safetensors file with the backbone's (timm) keys that round-trips byte for byte. Saves a screenshot to
 * docs/lab-screenshot.png. Skips, saying why, when /usr/bin/chromium is absent.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { fingerprint } from '../../examples/lab/store.js';
import { useBackend } from '../helpers/backends.js';
import { serve } from '../helpers/staticServer.js';

const CHROMIUM = process.env.VB_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SITE = join(ROOT, 'dist-lab');
const STEPS = 30;

if (!HAVE_CHROMIUM) console.warn(`lab test skipped: ${CHROMIUM} not found (install Debian's chromium: apt-get install -y chromium)`);

const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;

describe.skipIf(!HAVE_CHROMIUM)(
  `pretraining lab in headless Chromium (${HAVE_CHROMIUM ? CHROMIUM : `skipped: ${CHROMIUM} not found`})`,
  () => {
    let tmp: string;
    let server: Server;
    let base: string;
    let context: any;
    let page: any;
    const problems: string[] = [];
    const lines: string[] = [];
    let first: any;

    const waitSettled = () =>
      page.waitForFunction(() => ['done', 'error'].includes((window as any).visbackbonesLab?.status), null, { timeout: 240_000 });
    const labState = () => page.evaluate(() => JSON.parse(JSON.stringify((window as any).visbackbonesLab)));

    beforeAll(async () => {
      await useBackend('cpu');
      tmp = mkdtempSync(join(tmpdir(), 'vb-lab-'));
      // the same build as `npm run build:lab` (a few seconds), so the page tested is this checkout's
      const { build } = await import('vite');
      await build({ configFile: join(ROOT, 'examples', 'lab', 'vite.config.ts'), logLevel: 'error' });
      expect(existsSync(join(SITE, 'index.html'))).toBe(true);
      server = await serve([['/', SITE]]);
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { chromium } = await import('playwright-core');
      context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        acceptDownloads: true,
        viewport: { width: 1100, height: 900 },
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      page = await context.newPage();
      page.on('console', (m: { type(): string; text(): string }) => {
        lines.push(m.text());
        if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
      });
      page.on('pageerror', (e: Error) => problems.push(`pageerror: ${e.message}`));
      await page.goto(`${base}/?method=simmim&model=swin_tiny_patch4_window7_224&steps=${STEPS}&backend=wasm&seed=0`);
      await waitSettled();
      first = await labState();
    }, 300_000);

    afterAll(async () => {
      await context?.close();
      await new Promise((r) => (server ? server.close(r) : r(null)));
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it(`trains ${STEPS} SimMIM steps on wasm: the loss falls, pictures are drawn, both probes run`, async () => {
      const log = `${await page.textContent('#log')}\n${lines.join('\n')}`;
      expect(first.error, log).toBeUndefined();
      expect(first.status).toBe('done');
      expect(first.backend).toBe('wasm');
      expect([first.method, first.family, first.step, first.totalSteps]).toEqual(['simmim', 'swin', STEPS, STEPS]);
      expect(first.losses.length).toBe(STEPS);
      for (const l of first.losses) expect(Number.isFinite(l)).toBe(true);
      const head = mean(first.losses.slice(0, 5));
      const tail = mean(first.losses.slice(-5));
      console.log(
        `lab wasm (1 thread): ${first.stepsPerSec.toFixed(2)} steps/s (optimisation steps), ${first.wallStepsPerSec.toFixed(2)} steps/s wall with drawing; ` +
          `loss first5 ${head.toFixed(4)} last5 ${tail.toFixed(4)} ratio ${(tail / head).toFixed(3)}; ` +
          `probe test acc pretrained ${first.probe.pretrained.testAcc.toFixed(3)} random ${first.probe.random.testAcc.toFixed(3)}`,
      );
      // margin: the mean of the last 5 losses is below 90% of the first 5 (measured ratio printed above)
      expect(tail).toBeLessThan(0.9 * head);
      // the live pictures were redrawn while training, and the reconstruction column is not blank
      expect(first.previews).toBeGreaterThan(1);
      const cols = first.grid.columns.map((c: { label: string }) => c.label);
      expect(cols).toEqual(['input', 'mask', 'masked input', 'reconstruction', 'prediction + visible']);
      const rec = first.grid.columns[3];
      const painted = await page.evaluate(
        ({ x, y, w, h }: { x: number; y: number; w: number; h: number }) => {
          const c = document.getElementById('grid') as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(x, y, w, h).data;
          const seen = new Set<number>();
          let nonWhite = 0;
          for (let i = 0; i < d.length; i += 4) {
            seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
            if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) nonWhite++;
          }
          return { colours: seen.size, nonWhite, total: d.length / 4 };
        },
        { x: rec.x, y: first.grid.top, w: rec.width, h: first.grid.height },
      );
      expect(painted.colours).toBeGreaterThan(64);
      expect(painted.nonWhite).toBeGreaterThan(painted.total / 2);
      const lossPainted = await page.evaluate(() => {
        const c = document.getElementById('loss') as HTMLCanvasElement;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let red = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 100 && d[i + 2] < 100) red++;
        return red;
      });
      expect(lossPainted).toBeGreaterThan(50);
      // the linear probes of the pretrained and of the randomly initialised backbone both ran
      for (const p of [first.probe.pretrained, first.probe.random]) {
        expect(p.classes).toBe(6);
        expect(p.testAcc).toBeGreaterThanOrEqual(0);
        expect(p.testAcc).toBeLessThanOrEqual(1);
        expect(p.trainAcc).toBeGreaterThan(1 / 6);
      }
      expect(await page.locator('#probe table tr').count()).toBe(3);
      await page.screenshot({ path: join(ROOT, 'docs', 'lab-screenshot.png'), fullPage: true });
      expect(problems, problems.join('\n')).toEqual([]);
    });

    it('downloads the backbone as safetensors with its timm keys, which round-trips byte for byte', async () => {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      expect(download.suggestedFilename()).toMatch(/^swin-tiny64-simmim-step30\.safetensors$/);
      const bytes = new Uint8Array(readFileSync(await download.path()));
      expect(fingerprint(bytes)).toBe(first.backboneFingerprint);
      const sd = readSafetensors(bytes);
      const keys = Object.keys(sd).sort();
      expect(keys).toEqual(first.backboneKeys);
      expect(keys).toContain('patch_embed.proj.weight');
      expect(keys.some((k) => k.startsWith('encoder.') || k.startsWith('decoder'))).toBe(false);
      expect(sd['patch_embed.proj.weight'].shape).toEqual([8, 3, 4, 4]); // torch layout [out, in, kh, kw]
      const again = writeSafetensors(sd);
      expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      tf.dispose(Object.values(sd));
      expect(problems, problems.join('\n')).toEqual([]);
    });

    it(`trains ${STEPS} steps on wasm with 2 threads when the page is cross-origin isolated (COOP / COEP)`, async () => {
      const isolated = await serve([['/', SITE]], {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
      });
      try {
        const url = `http://127.0.0.1:${(isolated.address() as AddressInfo).port}`;
        const p2 = await context.newPage();
        const errs: string[] = [];
        p2.on('pageerror', (e: Error) => errs.push(`pageerror: ${e.message}`));
        await p2.goto(`${url}/?method=simmim&model=swin_tiny_patch4_window7_224&steps=${STEPS}&backend=wasm&seed=0&probe=0`);
        await p2.waitForFunction(() => ['done', 'error'].includes((window as any).visbackbonesLab?.status), null, { timeout: 240_000 });
        const st = await p2.evaluate(() => JSON.parse(JSON.stringify((window as any).visbackbonesLab)));
        await p2.close();
        expect(st.error).toBeUndefined();
        expect(st.status).toBe('done');
        expect(st.backend).toBe('wasm');
        expect(st.threads).toBe(2);
        const head = mean(st.losses.slice(0, 5));
        const tail = mean(st.losses.slice(-5));
        console.log(
          `lab wasm (2 threads): ${st.stepsPerSec.toFixed(2)} steps/s vs ${first.stepsPerSec.toFixed(2)} with 1 thread in this run; ` +
            `loss first5 ${head.toFixed(4)} last5 ${tail.toFixed(4)}`,
        );
        expect(st.losses.length).toBe(STEPS);
        expect(tail).toBeLessThan(0.9 * head);
        expect(errs, errs.join('\n')).toEqual([]);
      } finally {
        await new Promise((r) => isolated.close(r));
      }
    });

    it('restores the run saved in IndexedDB after a reload, with identical weights', async () => {
      expect(first.savedStep).toBe(STEPS);
      expect(first.savedFingerprint).toBe(first.modelFingerprint);
      await page.goto(`${base}/?resume=1&probe=0&backend=wasm`);
      await waitSettled();
      const again = await labState();
      expect(again.error).toBeUndefined();
      expect(again.resumedFrom).toBe(STEPS);
      expect(again.step).toBe(STEPS);
      expect(again.restoredFingerprint).toBe(first.savedFingerprint);
      expect(again.losses).toEqual(first.losses);
      expect(again.modelFingerprint).toBe(first.modelFingerprint);
      expect(problems, problems.join('\n')).toEqual([]);
    });

    it('trains on dropped image files; pause holds the step, resume goes on, stop ends the run early', async () => {
      // three PNGs of different sizes made in the page, dropped on the document as a user would
      await page.evaluate(async () => {
        const dt = new DataTransfer();
        for (const [i, [w, h]] of [
          [90, 60],
          [64, 64],
          [40, 120],
        ].entries()) {
          const c = document.createElement('canvas');
          c.width = w;
          c.height = h;
          const ctx = c.getContext('2d')!;
          ctx.fillStyle = ['#c33', '#3c3', '#33c'][i];
          ctx.fillRect(0, 0, w, h);
          ctx.fillStyle = '#fff';
          ctx.beginPath();
          ctx.arc(w / 2, h / 2, Math.min(w, h) / 3, 0, 2 * Math.PI);
          ctx.fill();
          const blob = await new Promise<Blob>((r) => c.toBlob((b) => r(b!), 'image/png'));
          dt.items.add(new File([blob], `img${i}.png`, { type: 'image/png' }));
        }
        document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      await page.waitForFunction(() => document.getElementById('data-name')!.textContent === 'your images (3)', null, { timeout: 30_000 });
      await page.fill('#steps', '500');
      await page.click('#start');
      await page.waitForFunction(() => (window as any).visbackbonesLab.step >= 3, null, { timeout: 60_000 });
      await page.click('#pause');
      await page.waitForFunction(() => (window as any).visbackbonesLab.paused, null, { timeout: 30_000 });
      const held = (await labState()).step;
      await page.waitForTimeout(600);
      expect((await labState()).step).toBe(held);
      await page.click('#pause'); // now labelled 'resume'
      await page.waitForFunction((s: number) => (window as any).visbackbonesLab.step > s + 1, held, { timeout: 60_000 });
      await page.click('#stop');
      await waitSettled();
      const s = await labState();
      expect(s.error).toBeUndefined();
      expect(s.status).toBe('done');
      expect(s.step).toBeGreaterThan(held);
      expect(s.step).toBeLessThan(500);
      expect(s.losses.length).toBe(s.step);
      expect(s.savedStep).toBe(s.step);
      expect(await page.textContent('#status')).toBe(`stopped at step ${s.step}`);
      expect(problems, problems.join('\n')).toEqual([]);
    });
  },
);
