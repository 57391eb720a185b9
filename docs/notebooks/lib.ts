/**
 * Helpers shared by the research notebooks: pick a backend, write figures as PNG, and tell whether a
 * notebook file was started directly (`npx tsx docs/notebooks/NAME.ts [OUT_DIR]`).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../src/backends/wasmKernels.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import { imageGrid, ImageGridOptions, RgbImage } from '../../src/viz/imageGrid.js';
import { encodePng } from '../../src/viz/png.js';

/** What every notebook's `run` takes. */
export interface NotebookOptions {
  /** Folder for the figures (created). */
  out: string;
}

/** Write rows of images as one PNG in `dir`; returns the path. */
export function savePng(dir: string, name: string, rows: RgbImage[][], opts: ImageGridOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const g = imageGrid(rows, opts);
  const path = join(dir, name);
  writeFileSync(path, encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (d) => new Uint8Array(deflateSync(d)) }));
  return path;
}

/** Draw a line segment (in pixel units) onto an RGB image, adding `colour * weight`. */
export function drawLine(im: RgbImage, x0: number, y0: number, x1: number, y1: number, colour: [number, number, number], weight = 1): void {
  const n = Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 2) + 1;
  for (let i = 0; i <= n; i++) {
    const x = Math.round(x0 + ((x1 - x0) * i) / n);
    const y = Math.round(y0 + ((y1 - y0) * i) / n);
    if (x < 0 || y < 0 || x >= im.width || y >= im.height) continue;
    for (let k = 0; k < 3; k++) im.data[(y * im.width + x) * 3 + k] = Math.min(1, im.data[(y * im.width + x) * 3 + k] + colour[k] * weight);
  }
}

/** A blank (black) image. */
export function blank(width: number, height: number): RgbImage {
  return { width, height, data: new Float32Array(width * height * 3) };
}

/** Run `main` when the notebook file is the script node started; the first argument is the output folder. */
export function runIfMain(url: string, main: (opts: NotebookOptions) => Promise<unknown>): void {
  if (!process.argv[1] || url !== pathToFileURL(resolve(process.argv[1])).href) return;
  const out = process.argv[2] ?? join('out', 'notebooks');
  (async () => {
    await tf.setBackend(process.env.VB_BACKEND ?? 'wasm');
    await tf.ready();
    const res = await main({ out });
    console.log(JSON.stringify(res, null, 2));
  })().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
