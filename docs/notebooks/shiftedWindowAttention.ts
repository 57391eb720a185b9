/**
 * # Notebook: attention maps of shifted windows
 *
 * Swin (Liu et al. 2021, sec. 3.2) attends inside non-overlapping windows and alternates regular and
 * shifted partitions so information crosses window borders. The shifted partition is computed as a
 * cyclic shift of the map (`roll` by half a window) followed by the regular partition; windows at the
 * bottom and right edges then hold tokens from up to four separate image regions, and an additive mask
 * (-100 between regions) keeps each token attending to its own region only.
 *
 * This notebook loads a SwinV2 checkpoint (the `swinv2_p4w4_64` test fixture: timm's layout, random
 * weights), runs a generated image through it, and draws:
 * 1. `window_partitions.png`: the image with the regular windows (block 0) and the shifted windows
 *    (block 1) outlined, and the mask's regions of the shifted partition.
 * 2. `shifted_window_attention.png`: attention rows of chosen query tokens in block 0 (regular) and
 *    block 1 (shifted), painted at the tokens' positions in the image (the cyclic shift undone).
 *    The corner query of the shifted block attends only to the wrapped-around tokens of its region.
 *
 * Run: `npx tsx docs/notebooks/shiftedWindowAttention.ts [OUT_DIR]`.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syntheticShapes, SHAPES_MEAN, SHAPES_STD } from '../../src/data/syntheticShapes.js';
import { swinV2 } from '../../src/models/swin/swinTransformer.js';
import { colormap, RgbImage, tensorToImages } from '../../src/viz/imageGrid.js';
import { windowAttentionMaps, WindowAttentionMaps } from '../../src/models/swin/windowAttentionMaps.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { NotebookOptions, drawLine, runIfMain, savePng } from './lib.js';

const FIXTURE = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'test', 'fixtures', 'swinv2_p4w4_64');

/** Paint one attention row (window `w`, query `q`, averaged over heads) onto a copy of `image`. */
function attentionOverlay(
  image: RgbImage,
  m: WindowAttentionMaps,
  probs: Float32Array,
  w: number,
  q: number,
): { im: RgbImage; row: number[] } {
  const [gh, gw] = m.grid;
  const [wh, ww] = m.window;
  const [sh, sw] = m.shift;
  const n = wh * ww;
  const row = new Array<number>(n).fill(0);
  for (let h = 0; h < m.heads; h++) for (let t = 0; t < n; t++) row[t] += probs[((w * m.heads + h) * n + q) * n + t] / m.heads;
  const perRow = gw / ww;
  const pos = (t: number): [number, number] => [
    (Math.floor(w / perRow) * wh + Math.floor(t / ww) + sh) % gh,
    ((w % perRow) * ww + (t % ww) + sw) % gw,
  ];
  const heat = colormap(row, n, 1, { min: 0, max: Math.max(...row) });
  const cell = image.width / gw;
  const im: RgbImage = { width: image.width, height: image.height, data: image.data.map((v) => v * 0.35) };
  for (let t = 0; t < n; t++) {
    const [gy, gx] = pos(t);
    for (let y = gy * cell; y < (gy + 1) * cell; y++) {
      for (let x = gx * cell; x < (gx + 1) * cell; x++) {
        for (let k = 0; k < 3; k++)
          im.data[(y * im.width + x) * 3 + k] = 0.25 * image.data[(y * im.width + x) * 3 + k] + 0.75 * heat.data[t * 3 + k];
      }
    }
  }
  const [qy, qx] = pos(q);
  const white: [number, number, number] = [1, 1, 1];
  drawLine(im, qx * cell, qy * cell, (qx + 1) * cell - 1, qy * cell, white);
  drawLine(im, qx * cell, (qy + 1) * cell - 1, (qx + 1) * cell - 1, (qy + 1) * cell - 1, white);
  drawLine(im, qx * cell, qy * cell, qx * cell, (qy + 1) * cell - 1, white);
  drawLine(im, (qx + 1) * cell - 1, qy * cell, (qx + 1) * cell - 1, (qy + 1) * cell - 1, white);
  return { im, row };
}

/** Outline the windows of a partition (window `win` tokens, shift `shift` tokens, token cell `cell` px). */
function outlineWindows(image: RgbImage, win: number, shift: number, cell: number, colour: [number, number, number]): RgbImage {
  const im: RgbImage = { ...image, data: image.data.slice() };
  for (let g = 0; g <= image.width / cell; g += win) {
    const p = (((g + shift) * cell) % image.width) + 0;
    drawLine(im, p, 0, p, image.height - 1, colour);
    drawLine(im, 0, p, image.width - 1, p, colour);
  }
  return im;
}

/** Run the notebook: writes two PNGs into `opts.out` and returns what it measured. */
export async function run(opts: NotebookOptions) {
  const fx = JSON.parse(readFileSync(join(FIXTURE, 'case.json'), 'utf8'));
  const model = swinV2(fx.config);
  loadTimmWeights(model, new Uint8Array(readFileSync(join(FIXTURE, 'weights.safetensors'))));
  const size = fx.config.imgSize as number;
  const { images, labels } = syntheticShapes({ imageSize: size, seed: 11 }).batch([5]);
  labels.dispose();
  const image = tensorToImages(images, SHAPES_MEAN, SHAPES_STD)[0];

  const regular = windowAttentionMaps(model, images, 0, 0);
  const shifted = windowAttentionMaps(model, images, 0, 1);
  const cell = size / regular.grid[1];
  const [win] = shifted.window;
  const [shift] = shifted.shift;

  // figure 1: partitions and the mask's regions (labels of the shifted map, as the reference builds them)
  const [gh, gw] = shifted.grid;
  const regions: number[] = [];
  for (let y = 0; y < gh; y++) {
    for (let x = 0; x < gw; x++) {
      const band = (v: number, n: number) => (v < n - win ? 0 : v < n - shift ? 1 : 2);
      // region of the token that lands at shifted position (y, x)
      regions.push(band(y, gh) * 3 + band(x, gw));
    }
  }
  // show the regions at the tokens' image positions (undo the shift)
  const regionImg = new Array<number>(gh * gw);
  for (let y = 0; y < gh; y++) for (let x = 0; x < gw; x++) regionImg[((y + shift) % gh) * gw + ((x + shift) % gw)] = regions[y * gw + x];
  const regionMap = colormap(regionImg, gw, gh, { min: 0, max: 8 });
  const upRegions: RgbImage = { width: size, height: size, data: new Float32Array(size * size * 3) };
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let k = 0; k < 3; k++)
        upRegions.data[(y * size + x) * 3 + k] = regionMap.data[(Math.floor(y / cell) * gw + Math.floor(x / cell)) * 3 + k];
  const fig1 = savePng(
    opts.out,
    'window_partitions.png',
    [
      [
        outlineWindows(image, win, 0, cell, [1, 1, 1]),
        outlineWindows(image, win, shift, cell, [1, 0.3, 0.3]),
        outlineWindows(upRegions, win, shift, cell, [1, 1, 1]),
      ],
    ],
    { scale: 3 },
  );

  // figure 2: attention rows of chosen queries, regular block (top) and shifted block (bottom)
  const n = win * win;
  const last = shifted.windowsPerImage - 1;
  const queries: [number, number][] = [
    [5, 5], // an interior window, an interior token
    [5, 0],
    [last, 0], // the bottom-right window of the shifted partition: a token from the main region ...
    [last, n - 1], // ... and one that wrapped around from the top-left corner
  ];
  const pr = regular.probs.dataSync() as Float32Array;
  const ps = shifted.probs.dataSync() as Float32Array;
  const top = queries.map(([w, q]) => attentionOverlay(image, regular, pr, w, q).im);
  const bottomRes = queries.map(([w, q]) => attentionOverlay(image, shifted, ps, w, q));
  const fig2 = savePng(opts.out, 'shifted_window_attention.png', [top, bottomRes.map((r) => r.im)], { scale: 3 });

  // what the figures show, as numbers: every row sums to 1; across mask regions the weight is ~0
  const rowSumErr = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.sum(shifted.probs, -1), 1))).dataSync()[0]);
  const cornerRow = bottomRes[3].row;
  const cornerRegion = regions[(gh - 1) * gw + (gw - 1)];
  let crossRegionWeight = 0;
  for (let t = 0; t < n; t++) {
    const y = gh - win + Math.floor(t / win);
    const x = gw - win + (t % win);
    if (regions[y * gw + x] !== cornerRegion) crossRegionWeight += cornerRow[t];
  }
  tf.dispose([regular.probs, shifted.probs, images]);
  model.dispose();
  return { figures: [fig1, fig2], window: win, shift, rowSumErr, crossRegionWeight };
}

runIfMain(import.meta.url, run);
