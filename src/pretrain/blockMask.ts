import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { checkPositiveInt, toPair } from './maskUtils.js';
import { SeededRandom, SeedLike, toRng } from './rng.js';

/** Options of {@link blockMask} (BEiT's `MaskingGenerator` arguments, camelCase). */
export interface BlockMaskOptions {
  /** Token grid (square number or `[h, w]`). */
  inputSize: number | [number, number];
  /** Target number of masked tokens (e.g. 75 of 196 in BEiT, 105 in EVA). */
  numMaskingPatches: number;
  /** Smallest block area (default 4). */
  minNumPatches?: number;
  /** Largest block area (default `numMaskingPatches`). */
  maxNumPatches?: number;
  /** Smallest block aspect ratio (default 0.3); the largest defaults to its inverse. */
  minAspect?: number;
  maxAspect?: number;
  /** Masks to draw: omitted gives `[h, w]`, a number `[batch, h, w]`. */
  batch?: number;
  seed?: SeedLike;
}

/** One block-masking draw on a `[h, w]` 0/1 grid (BEiT's `MaskingGenerator.__call__`). */
function drawBlockMask(
  h: number,
  w: number,
  o: Required<Omit<BlockMaskOptions, 'inputSize' | 'batch' | 'seed'>>,
  rng: SeededRandom,
): Uint8Array {
  const mask = new Uint8Array(h * w);
  const logAspect = [Math.log(o.minAspect), Math.log(o.maxAspect)];
  const place = (maxPatches: number): number => {
    let delta = 0;
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = rng.uniformRange(o.minNumPatches, maxPatches);
      const aspect = Math.exp(rng.uniformRange(logAspect[0], logAspect[1]));
      const bh = Math.round(Math.sqrt(target * aspect));
      const bw = Math.round(Math.sqrt(target / aspect));
      if (bw < w && bh < h) {
        const top = rng.randint(0, h - bh);
        const left = rng.randint(0, w - bw);
        let masked = 0;
        for (let i = top; i < top + bh; i++) for (let j = left; j < left + bw; j++) masked += mask[i * w + j];
        if (bh * bw - masked > 0 && bh * bw - masked <= maxPatches) {
          for (let i = top; i < top + bh; i++) {
            for (let j = left; j < left + bw; j++) {
              if (!mask[i * w + j]) {
                mask[i * w + j] = 1;
                delta++;
              }
            }
          }
        }
        if (delta > 0) break;
      }
    }
    return delta;
  };
  let count = 0;
  while (count < o.numMaskingPatches) {
    const delta = place(Math.min(o.numMaskingPatches - count, o.maxNumPatches));
    if (delta === 0) break;
    count += delta;
  }
  return mask;
}

/**
 * BEiT / EVA block-wise masking (Bao et al. 2022, sec. 2.5, algorithm 1): rectangles of random area in
 * `[minNumPatches, remaining]` and random aspect ratio (log-uniform) are masked until about
 * `numMaskingPatches` tokens are masked (a block is accepted only if it adds at most the remaining
 * count, so the total never exceeds the target). Returns 0/1, 1 = masked, `[h, w]` or `[batch, h, w]`.
 */
export function blockMask(opts: BlockMaskOptions): tf.Tensor2D | tf.Tensor3D {
  const [h, w] = toPair(opts.inputSize);
  checkPositiveInt('inputSize', h);
  checkPositiveInt('inputSize', w);
  const n = opts.numMaskingPatches;
  check(Number.isInteger(n) && n >= 0 && n <= h * w, () => `numMaskingPatches must be an integer in [0, ${h * w}], got ${n}`);
  const minAspect = opts.minAspect ?? 0.3;
  check(minAspect > 0, () => `minAspect must be > 0, got ${minAspect}`);
  const o = {
    numMaskingPatches: n,
    minNumPatches: opts.minNumPatches ?? 4,
    maxNumPatches: opts.maxNumPatches ?? n,
    minAspect,
    maxAspect: opts.maxAspect ?? 1 / minAspect,
  };
  const rng = toRng(opts.seed);
  if (opts.batch === undefined) return tf.tensor2d(Float32Array.from(drawBlockMask(h, w, o, rng)), [h, w]);
  checkPositiveInt('batch', opts.batch);
  const out = new Float32Array(opts.batch * h * w);
  for (let b = 0; b < opts.batch; b++) out.set(drawBlockMask(h, w, o, rng), b * h * w);
  return tf.tensor3d(out, [opts.batch, h, w]);
}
