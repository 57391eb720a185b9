import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mulberry32 } from '../utils/random.js';

/**
 * A procedurally generated, seeded video-classification dataset: one coloured shape (disc or square)
 * moving in a straight line over a background (plain or gradient) with pixel noise. The class is the
 * motion: direction x speed. A single frame carries no information about the label, so a model has
 * to compare frames (temporal modelling). Clip `i` depends only on `(seed, i)` (draws made in
 * JavaScript), so any slice is reproducible on every platform. Used where no data can be downloaded.
 */

/** The motion directions, in label order (label = direction * speeds + speed). */
export const VIDEO_DIRECTIONS = ['right', 'left', 'down', 'up'] as const;
/** The speeds, in label order: pixels per frame as a fraction of the clip size. */
export const VIDEO_SPEEDS = ['slow', 'fast'] as const;

/** Options of {@link syntheticVideo}. */
export interface SyntheticVideoOptions {
  /** Side of the square frames in pixels (default 32). */
  frameSize?: number;
  /** Frames per clip (default 8). */
  numFrames?: number;
  /** Seed of the whole dataset (default 0). */
  seed?: number;
  /** Use two speeds (8 classes, default) or one (4 classes: direction only). */
  speeds?: 1 | 2;
}

type Rgb = [number, number, number];

/** A seeded dataset of moving-shape clips; see {@link syntheticVideo}. */
export class SyntheticVideo {
  readonly frameSize: number;
  readonly numFrames: number;
  readonly seed: number;
  readonly numClasses: number;
  private readonly speeds: number;
  constructor(opts: SyntheticVideoOptions = {}) {
    this.frameSize = opts.frameSize ?? 32;
    this.numFrames = opts.numFrames ?? 8;
    this.seed = opts.seed ?? 0;
    this.speeds = opts.speeds ?? 2;
    check(Number.isInteger(this.frameSize) && this.frameSize >= 8, () => `frameSize must be an integer >= 8, got ${this.frameSize}`);
    check(Number.isInteger(this.numFrames) && this.numFrames >= 2, () => `numFrames must be an integer >= 2, got ${this.numFrames}`);
    check(this.speeds === 1 || this.speeds === 2, () => `speeds must be 1 or 2, got ${this.speeds}`);
    this.numClasses = VIDEO_DIRECTIONS.length * this.speeds;
  }

  private rng(index: number): () => number {
    return mulberry32(Math.imul(this.seed >>> 0, 0x9e3779b1) ^ Math.imul((index + 1) >>> 0, 0x27d4eb2f));
  }

  /** The label of clip `index` (direction * speeds + speed). */
  label(index: number): number {
    return Math.floor(this.rng(index)() * this.numClasses);
  }

  /** Render clip `index` as `[T, S, S, 3]` values in [0, 1] (row-major, frames first). */
  render(index: number): Float32Array {
    const rnd = this.rng(index);
    const label = Math.floor(rnd() * this.numClasses);
    const dir = Math.floor(label / this.speeds);
    const speedIdx = label % this.speeds;
    const n = this.frameSize;
    const t = this.numFrames;
    const radius = n * (0.12 + 0.06 * rnd());
    const square = rnd() < 0.5;
    // total travel: slow about a quarter of the frame, fast about 0.6 of it
    const travel = n * (this.speeds === 1 || speedIdx === 1 ? 0.55 + 0.1 * rnd() : 0.2 + 0.08 * rnd());
    const step = travel / (t - 1);
    const [dx, dy] = [
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
    ][dir];
    const margin = radius + 1;
    const span = (along: number) => Math.max(0, n - 2 * margin - (along ? travel : 0));
    let x0 = margin + rnd() * span(dx);
    let y0 = margin + rnd() * span(dy);
    if (dx < 0) x0 += travel;
    if (dy < 0) y0 += travel;
    const hue = rnd();
    const fg: Rgb = [
      0.5 + 0.5 * Math.cos(2 * Math.PI * hue),
      0.5 + 0.5 * Math.cos(2 * Math.PI * (hue + 1 / 3)),
      0.5 + 0.5 * Math.cos(2 * Math.PI * (hue + 2 / 3)),
    ];
    const bgA: Rgb = [rnd() * 0.4, rnd() * 0.4, rnd() * 0.4];
    const bgB: Rgb = rnd() < 0.5 ? bgA : [rnd() * 0.4, rnd() * 0.4, rnd() * 0.4];
    const noise = 0.03 + 0.04 * rnd();
    const out = new Float32Array(t * n * n * 3);
    for (let f = 0; f < t; f++) {
      const cx = x0 + dx * step * f;
      const cy = y0 + dy * step * f;
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const g = (x + y) / (2 * n);
          const inside = square
            ? Math.abs(x + 0.5 - cx) <= radius && Math.abs(y + 0.5 - cy) <= radius
            : Math.hypot(x + 0.5 - cx, y + 0.5 - cy) <= radius;
          for (let k = 0; k < 3; k++) {
            const base = inside ? fg[k] : bgA[k] * (1 - g) + bgB[k] * g;
            out[((f * n + y) * n + x) * 3 + k] = Math.min(1, Math.max(0, base + (rnd() * 2 - 1) * noise));
          }
        }
      }
    }
    return out;
  }

  /**
   * A batch: `clips` NTHWC `[B, T, S, S, 3]` normalised with `(x - mean) / std` (default 0.5 / 0.25)
   * and `labels` `[B]` int32.
   */
  batch(indices: number[], mean = 0.5, std = 0.25): { clips: tf.Tensor5D; labels: tf.Tensor1D } {
    check(indices.length > 0, 'batch needs at least one clip index');
    const per = this.numFrames * this.frameSize * this.frameSize * 3;
    const buf = new Float32Array(indices.length * per);
    const labels = new Int32Array(indices.length);
    indices.forEach((idx, b) => {
      const clip = this.render(idx);
      for (let i = 0; i < per; i++) buf[b * per + i] = (clip[i] - mean) / std;
      labels[b] = this.label(idx);
    });
    return {
      clips: tf.tensor5d(buf, [indices.length, this.numFrames, this.frameSize, this.frameSize, 3]),
      labels: tf.tensor1d(labels, 'int32'),
    };
  }
}

/** Build a {@link SyntheticVideo} dataset of moving shapes (class = direction x speed). */
export function syntheticVideo(opts: SyntheticVideoOptions = {}): SyntheticVideo {
  return new SyntheticVideo(opts);
}
