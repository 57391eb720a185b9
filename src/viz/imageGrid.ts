import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** A float RGB image: `data` holds `height * width * 3` values in [0, 1], row-major, HWC. */
export interface RgbImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Options of {@link imageGrid}. */
export interface ImageGridOptions {
  /** Pixels between cells and around the grid (default 2). */
  pad?: number;
  /** Nearest-neighbour upscaling of every cell (default 1). */
  scale?: number;
  /** Colour of the padding, RGB in [0, 1] (default white). */
  background?: [number, number, number];
}

/**
 * Tile rows of images into one 8-bit RGB picture (cells may differ in size; each row is as tall as
 * its tallest cell and each column as wide as its widest). Returns pixels ready for `encodePng`
 * with `channels: 3`.
 */
export function imageGrid(rows: RgbImage[][], opts: ImageGridOptions = {}): { width: number; height: number; pixels: Uint8Array } {
  const pad = opts.pad ?? 2;
  const s = opts.scale ?? 1;
  check(Number.isInteger(s) && s >= 1, () => `scale=${s}: expected a positive integer`);
  check(rows.length > 0 && rows.every((r) => r.length > 0), 'imageGrid needs at least one image in every row');
  const nCols = Math.max(...rows.map((r) => r.length));
  const colW = Array.from({ length: nCols }, (_, c) => Math.max(0, ...rows.map((r) => (r[c] ? r[c].width * s : 0))));
  const rowH = rows.map((r) => Math.max(...r.map((im) => im.height * s)));
  const width = pad + colW.reduce((a, w) => a + w + pad, 0);
  const height = pad + rowH.reduce((a, h) => a + h + pad, 0);
  const bg = (opts.background ?? [1, 1, 1]).map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  const px = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) px.set(bg, i * 3);
  let y0 = pad;
  rows.forEach((row, r) => {
    let x0 = pad;
    row.forEach((im, c) => {
      check(
        im.data.length === im.width * im.height * 3,
        () => `image [${r}][${c}] has ${im.data.length} values; expected ${im.width}*${im.height}*3`,
      );
      for (let y = 0; y < im.height * s; y++) {
        for (let x = 0; x < im.width * s; x++) {
          const src = (Math.floor(y / s) * im.width + Math.floor(x / s)) * 3;
          const dst = ((y0 + y) * width + x0 + x) * 3;
          for (let k = 0; k < 3; k++) px[dst + k] = Math.round(Math.min(1, Math.max(0, im.data[src + k])) * 255);
        }
      }
      x0 += colW[c] + pad;
    });
    y0 += rowH[r] + pad;
  });
  return { width, height, pixels: px };
}

/**
 * Split an NHWC batch (`[B, H, W, 3]`, or `[B, H, W, 1]` shown as grey) into {@link RgbImage}s,
 * undoing a per-channel normalisation `(x - mean) / std` (defaults: none).
 */
export function tensorToImages(x: tf.Tensor, mean: number[] = [0, 0, 0], std: number[] = [1, 1, 1]): RgbImage[] {
  check(
    x.rank === 4 && (x.shape[3] === 3 || x.shape[3] === 1),
    () => `expected an NHWC batch [B, H, W, 3 or 1], got [${x.shape.join(', ')}]`,
  );
  const [b, h, w, c] = x.shape as number[];
  const v = x.dataSync();
  const out: RgbImage[] = [];
  for (let i = 0; i < b; i++) {
    const data = new Float32Array(h * w * 3);
    for (let p = 0; p < h * w; p++) {
      for (let k = 0; k < 3; k++) {
        const ck = c === 1 ? 0 : k;
        data[p * 3 + k] = v[(i * h * w + p) * c + ck] * std[ck] + mean[ck];
      }
    }
    out.push({ width: w, height: h, data });
  }
  return out;
}

const VIRIDIS: [number, number, number][] = [
  [0.267, 0.005, 0.329],
  [0.283, 0.141, 0.458],
  [0.254, 0.265, 0.53],
  [0.207, 0.372, 0.553],
  [0.164, 0.471, 0.558],
  [0.128, 0.567, 0.551],
  [0.135, 0.659, 0.518],
  [0.267, 0.749, 0.441],
  [0.478, 0.821, 0.318],
  [0.741, 0.873, 0.15],
  [0.993, 0.906, 0.144],
];

/**
 * Map scalars to colours with a viridis-like colormap (piecewise-linear through 11 samples of
 * matplotlib's viridis). `min`/`max` default to the data's range.
 */
export function colormap(values: ArrayLike<number>, width: number, height: number, range?: { min?: number; max?: number }): RgbImage {
  check(values.length === width * height, () => `colormap got ${values.length} values for a ${width}x${height} image`);
  let lo = range?.min ?? Infinity;
  let hi = range?.max ?? -Infinity;
  if (range?.min === undefined || range?.max === undefined) {
    for (let i = 0; i < values.length; i++) {
      if (range?.min === undefined) lo = Math.min(lo, values[i]);
      if (range?.max === undefined) hi = Math.max(hi, values[i]);
    }
  }
  const span = hi > lo ? hi - lo : 1;
  const data = new Float32Array(width * height * 3);
  for (let i = 0; i < values.length; i++) {
    const t = Math.min(1, Math.max(0, (values[i] - lo) / span)) * (VIRIDIS.length - 1);
    const j = Math.min(VIRIDIS.length - 2, Math.floor(t));
    const f = t - j;
    for (let k = 0; k < 3; k++) data[i * 3 + k] = VIRIDIS[j][k] * (1 - f) + VIRIDIS[j + 1][k] * f;
  }
  return { width, height, data };
}
