/**
 * # Notebook: SwinV2's continuous position bias across window sizes
 *
 * Swin's relative position bias is a learned table with one entry per offset, so it is tied to the
 * window it was trained with. SwinV2 (Liu et al. 2022, sec. 3.4) replaces the table with a small MLP
 * (`cpb_mlp`: 2 -> 512 -> heads, eq. 3) evaluated on log-spaced offsets
 * `sign(d) * log2(1 + 8|d| / (W_pre - 1)) / log2(8)` (eq. 4), and squashes it with `16 * sigmoid`.
 * The same MLP then gives a bias for any window: offsets beyond the pretraining window land on the
 * slowly growing log scale instead of outside a table.
 *
 * This notebook takes the CPB MLP of one block of a SwinV2 checkpoint (the `swinv2_p4w4_64` test
 * fixture, window 4), treats 4 as the pretraining window, and evaluates the bias for windows 4, 8, 12
 * and 16. `cpb_across_windows.png`: per window size (columns), head 0's bias over all offsets
 * (top row, `(2W-1) x (2W-1)`, zero offset at the centre) and the bias that the centre query of the
 * window adds to every key (bottom row, `W x W`). Each window's bias is also computed by a
 * `CosineWindowAttention` built for that window with the same weights, and compared.
 *
 * Run: `npx tsx docs/notebooks/cpbAcrossWindows.ts [OUT_DIR]`.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CosineWindowAttention } from '../../src/layers/cosineWindowAttention.js';
import { logSpacedCoordsTable } from '../../src/layers/relativePosition.js';
import { swinV2 } from '../../src/models/swin/swinTransformer.js';
import { colormap, RgbImage } from '../../src/viz/imageGrid.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { NotebookOptions, runIfMain, savePng } from './lib.js';

const FIXTURE = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'test', 'fixtures', 'swinv2_p4w4_64');

/** Nearest-neighbour upscaling of an image to about `px` pixels wide. */
function upscale(im: RgbImage, px: number): RgbImage {
  const s = Math.max(1, Math.round(px / im.width));
  const out: RgbImage = { width: im.width * s, height: im.height * s, data: new Float32Array(im.width * s * im.height * s * 3) };
  for (let y = 0; y < out.height; y++)
    for (let x = 0; x < out.width; x++)
      for (let k = 0; k < 3; k++)
        out.data[(y * out.width + x) * 3 + k] = im.data[(Math.floor(y / s) * im.width + Math.floor(x / s)) * 3 + k];
  return out;
}

/** Run the notebook: writes `cpb_across_windows.png` and returns the biases' ranges and the cross-check. */
export async function run(opts: NotebookOptions) {
  const fx = JSON.parse(readFileSync(join(FIXTURE, 'case.json'), 'utf8'));
  const model = swinV2(fx.config);
  loadTimmWeights(model, new Uint8Array(readFileSync(join(FIXTURE, 'weights.safetensors'))));
  const attn = model.layers.items[0].blocks.items[0].attn as CosineWindowAttention;
  const pretrained = attn.opts.windowSize[0];
  const heads = attn.opts.numHeads;
  const sd = attn.stateDict();

  const windows = [pretrained, 2 * pretrained, 3 * pretrained, 4 * pretrained];
  const top: RgbImage[] = [];
  const bottom: RgbImage[] = [];
  const stats: { window: number; min: number; max: number; moduleMaxAbsDiff: number }[] = [];
  let lo = Infinity;
  let hi = -Infinity;
  const tables: Float32Array[] = [];
  for (const w of windows) {
    // SwinV2 eq. 3-4, written out: log-spaced offsets relative to the pretraining window, MLP, 16 * sigmoid
    const table = tf.tidy(() => {
      const coords = logSpacedCoordsTable(w, w, pretrained, pretrained);
      return tf.mul(tf.sigmoid(attn.cpbFc2.forward(tf.relu(attn.cpbFc1.forward(coords)))), 16).dataSync() as Float32Array; // [(2w-1)^2, heads]
    });
    tables.push(table);
    // the same bias from a module built for this window with the same weights
    const other = new CosineWindowAttention({
      dim: attn.opts.dim,
      numHeads: heads,
      windowSize: [w, w],
      pretrainedWindowSize: [pretrained, pretrained],
    });
    other.loadStateDict(sd);
    const bias = other.relativePositionBias(); // [heads, N, N]
    const b = bias.dataSync();
    const n = w * w;
    let diff = 0;
    for (let h = 0; h < heads; h++) {
      for (let p = 0; p < n; p++) {
        for (let q = 0; q < n; q++) {
          const dy = Math.floor(p / w) - Math.floor(q / w) + w - 1;
          const dx = (p % w) - (q % w) + w - 1;
          diff = Math.max(diff, Math.abs(b[(h * n + p) * n + q] - table[(dy * (2 * w - 1) + dx) * heads + h]));
        }
      }
    }
    bias.dispose();
    other.dispose();
    let mn = Infinity;
    let mx = -Infinity;
    for (let i = 0; i < table.length; i += heads) {
      mn = Math.min(mn, table[i]);
      mx = Math.max(mx, table[i]);
    }
    lo = Math.min(lo, mn);
    hi = Math.max(hi, mx);
    stats.push({ window: w, min: mn, max: mx, moduleMaxAbsDiff: diff });
  }
  windows.forEach((w, i) => {
    const t = tables[i];
    const side = 2 * w - 1;
    top.push(
      upscale(
        colormap(
          Array.from({ length: side * side }, (_, r) => t[r * heads]),
          side,
          side,
          { min: lo, max: hi },
        ),
        96,
      ),
    );
    // bias that the centre query adds to each key of the window (head 0)
    const c = Math.floor(w / 2);
    const centre = Array.from({ length: w * w }, (_, q) => t[((c - Math.floor(q / w) + w - 1) * side + (c - (q % w) + w - 1)) * heads]);
    bottom.push(upscale(colormap(centre, w, w, { min: lo, max: hi }), 96));
  });
  // the pretraining window's table equals the module's own bias (its pretrained window is its window)
  const own = attn.relativePositionBias();
  const ownDiff = tf.tidy(() => {
    const n = pretrained * pretrained;
    const b = own.dataSync();
    let d = 0;
    for (let p = 0; p < n; p++)
      for (let q = 0; q < n; q++) {
        const dy = Math.floor(p / pretrained) - Math.floor(q / pretrained) + pretrained - 1;
        const dx = (p % pretrained) - (q % pretrained) + pretrained - 1;
        d = Math.max(d, Math.abs(b[p * n + q] - tables[0][(dy * (2 * pretrained - 1) + dx) * heads]));
      }
    return d;
  });
  own.dispose();
  tf.dispose(Object.values(sd));
  model.dispose();
  const fig = savePng(opts.out, 'cpb_across_windows.png', [top, bottom], { pad: 4 });
  return { figures: [fig], pretrainedWindow: pretrained, windows: stats, ownWindowMaxAbsDiff: ownDiff };
}

runIfMain(import.meta.url, run);
