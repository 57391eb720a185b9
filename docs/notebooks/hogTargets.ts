/**
 * # Notebook: HOG targets of an image
 *
 * MaskFeat (Wei et al. 2022, sec. 3.2) and FastMIM (Guo et al. 2022, sec. 3.2) predict histograms of
 * oriented gradients (HOG) of the masked patches instead of their pixels: per colour channel, Sobel
 * gradients, orientations binned into 9 unsigned bins over 180 degrees, magnitudes summed over 8x8
 * cells, each cell's histogram L2-normalised. The target ignores colour shifts and textures' exact
 * phase and keeps the edges, which is what a recognition model needs.
 *
 * This notebook computes `hogTargets` for generated images and draws `hog_targets.png`: each image
 * (top) above its HOG glyphs (bottom): in every 8x8 cell, one line per orientation bin, drawn along
 * the edge direction (perpendicular to the gradient), as bright as the bin's summed gradient magnitude
 * (the histograms before the per-cell normalisation, summed over the three colour channels). It also recomputes the histograms with plain loops (reflect padding, Sobel,
 * `atan2(gx, gy)` binning, per-cell sums and L2 normalisation) and reports the largest difference.
 *
 * Run: `npx tsx docs/notebooks/hogTargets.ts [OUT_DIR]`.
 */
import * as tf from '@tensorflow/tfjs';
import { syntheticShapes } from '../../src/data/syntheticShapes.js';
import { hogTargets } from '../../src/pretrain/hog.js';
import { RgbImage } from '../../src/viz/imageGrid.js';
import { NotebookOptions, blank, drawLine, runIfMain, savePng } from './lib.js';

const NBINS = 9;
const POOL = 8;

/** HOG by plain loops over one HWC image (the reference's steps, written out), `[h, w, 3 * NBINS]`. */
function hogByLoops(im: Float32Array, H: number, W: number): Float32Array {
  const h = H / POOL;
  const w = W / POOL;
  const out = new Float32Array(h * w * 3 * NBINS);
  const at = (y: number, x: number, c: number) => {
    const yy = y < 0 ? -y : y >= H ? 2 * H - 2 - y : y; // reflect padding
    const xx = x < 0 ? -x : x >= W ? 2 * W - 2 - x : x;
    return im[(yy * W + xx) * 3 + c];
  };
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        // cross-correlation with [[1,0,-1],[2,0,-2],[1,0,-1]] and its transpose
        const gx =
          at(y - 1, x - 1, c) - at(y - 1, x + 1, c) + 2 * (at(y, x - 1, c) - at(y, x + 1, c)) + at(y + 1, x - 1, c) - at(y + 1, x + 1, c);
        const gy =
          at(y - 1, x - 1, c) + 2 * at(y - 1, x, c) + at(y - 1, x + 1, c) - at(y + 1, x - 1, c) - 2 * at(y + 1, x, c) - at(y + 1, x + 1, c);
        const phase = (Math.atan2(gx, gy) / Math.PI) * NBINS;
        const bin = ((Math.floor(phase) % NBINS) + NBINS) % NBINS;
        const cell = Math.floor(y / POOL) * w + Math.floor(x / POOL);
        out[cell * 3 * NBINS + c * NBINS + bin] += Math.hypot(gx, gy);
      }
    }
  }
  for (let cell = 0; cell < h * w; cell++) {
    for (let c = 0; c < 3; c++) {
      const o = cell * 3 * NBINS + c * NBINS;
      let ss = 0;
      for (let b = 0; b < NBINS; b++) ss += out[o + b] ** 2;
      const norm = Math.max(Math.sqrt(ss), 1e-12);
      for (let b = 0; b < NBINS; b++) out[o + b] /= norm;
    }
  }
  return out;
}

/** HOG glyphs: per cell, a line per bin along the edge direction, brightness = summed bin value. */
function glyphs(hog: Float32Array, h: number, w: number, cellPx: number): RgbImage {
  const im = blank(w * cellPx, h * cellPx);
  let max = 0;
  const sums = new Float32Array(h * w * NBINS);
  for (let cell = 0; cell < h * w; cell++) {
    for (let b = 0; b < NBINS; b++) {
      for (let c = 0; c < 3; c++) sums[cell * NBINS + b] += hog[cell * 3 * NBINS + c * NBINS + b];
      max = Math.max(max, sums[cell * NBINS + b]);
    }
  }
  for (let cy = 0; cy < h; cy++) {
    for (let cx = 0; cx < w; cx++) {
      const mx = (cx + 0.5) * cellPx;
      const my = (cy + 0.5) * cellPx;
      for (let b = 0; b < NBINS; b++) {
        const v = sums[(cy * w + cx) * NBINS + b] / (max || 1);
        if (v < 0.05) continue;
        // bin b holds phases atan2(gx, gy) in [b, b+1) * pi / NBINS: gradient ~ (x: sin, y: cos); the edge is perpendicular
        const phi = ((b + 0.5) * Math.PI) / NBINS;
        const ex = Math.cos(phi);
        const ey = -Math.sin(phi);
        const r = cellPx * 0.45;
        drawLine(im, mx - ex * r, my - ey * r, mx + ex * r, my + ey * r, [1, 1, 1], v);
      }
    }
  }
  return im;
}

/** Run the notebook: writes `hog_targets.png`, returns the loop cross-check. */
export async function run(opts: NotebookOptions) {
  const size = 64;
  const ds = syntheticShapes({ imageSize: size, seed: 21 });
  const idx = [0, 1, 2, 5];
  const { images: raw, labels } = ds.batch(idx, [0, 0, 0], [1, 1, 1]); // pixels in [0, 1]
  labels.dispose();
  const hog = hogTargets(raw, { nbins: NBINS, pool: POOL });
  // the glyphs use the histograms before normalisation: normalised cells of flat regions show amplified noise
  const magnitudes = hogTargets(raw, { nbins: NBINS, pool: POOL, normalize: false });
  const h = size / POOL;
  const values = hog.dataSync() as Float32Array;
  const magValues = magnitudes.dataSync() as Float32Array;
  const pixels = raw.dataSync() as Float32Array;
  let maxAbsDiff = 0;
  const rows: RgbImage[][] = [];
  idx.forEach((_, i) => {
    const im = pixels.subarray(i * size * size * 3, (i + 1) * size * size * 3);
    const mine = values.subarray(i * h * h * 3 * NBINS, (i + 1) * h * h * 3 * NBINS);
    const loops = hogByLoops(im, size, size);
    for (let k = 0; k < loops.length; k++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(loops[k] - mine[k]));
    rows.push([
      { width: size, height: size, data: Float32Array.from(im) },
      glyphs(magValues.subarray(i * h * h * 3 * NBINS, (i + 1) * h * h * 3 * NBINS), h, h, POOL),
    ]);
  });
  const shape = hog.shape;
  tf.dispose([raw, hog, magnitudes]);
  const fig = savePng(opts.out, 'hog_targets.png', [rows.map((r) => r[0]), rows.map((r) => r[1])], {
    scale: 2,
    background: [0.5, 0.5, 0.5],
  });
  return { figures: [fig], shape, loopsMaxAbsDiff: maxAbsDiff };
}

runIfMain(import.meta.url, run);
