import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mulberry32 } from '../utils/random.js';
import { hsv, mixRgb, polygonContains, regularPolygon, Rgb, valueNoise } from './shapeRaster.js';

/**
 * A procedurally generated, seeded image-classification dataset: one coloured shape per image
 * (random size, position and rotation), filled with a solid colour or stripes, contrasting with a
 * background that is plain, a gradient, smooth noise or (less often) a low-contrast checker or
 * stripe texture, with pixel noise. The class is the shape. Image `i` depends only on
 * `(seed, i)`, so any slice can be generated on its own, in any order, on any platform (the draws
 * are made in JavaScript). Used by the demo, the notebooks and the tests, where no data can be
 * downloaded.
 */

/** The shape classes, in label order. */
export const SHAPE_CLASSES = ['circle', 'square', 'triangle', 'cross', 'ring', 'star'] as const;
/** One of {@link SHAPE_CLASSES}. */
export type ShapeClass = (typeof SHAPE_CLASSES)[number];

/** The fill patterns of the object, in label order when the task is `'fill'`. */
export const FILL_CLASSES = ['solid', 'stripes', 'checker', 'dots', 'rings', 'blotches'] as const;
/** One of {@link FILL_CLASSES}. */
export type FillClass = (typeof FILL_CLASSES)[number];

/** Per-channel mean used to normalise the images (`(x - mean) / std`). */
export const SHAPES_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
/** Per-channel standard deviation used to normalise the images. */
export const SHAPES_STD: [number, number, number] = [0.25, 0.25, 0.25];

/** Options of {@link syntheticShapes}. */
export interface SyntheticShapesOptions {
  /** Side of the square images in pixels (default 32). */
  imageSize?: number;
  /** Seed of the whole dataset (default 0). */
  seed?: number;
  /** Use the first `numClasses` of {@link SHAPE_CLASSES} (2..6, default 6). */
  numClasses?: number;
  /** Textured backgrounds and striped fills (default true); false gives plain colours only. */
  textures?: boolean;
  /**
   * What the label is: `'shape'` (default, {@link SHAPE_CLASSES}; fills are solid or striped) or
   * `'fill'` ({@link FILL_CLASSES}: the object's fill pattern, whatever its shape; backgrounds are
   * then plain, gradients or smooth noise so that only the object carries a pattern).
   */
  task?: 'shape' | 'fill';
}

/** A seeded 32-bit generator (mulberry32) for one image. */
function rngFor(seed: number, index: number): () => number {
  return mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((index + 1) >>> 0, 0x85ebca77));
}

const TRIANGLE = regularPolygon(3, [1]);
const STAR = regularPolygon(5, [1, 0.42]);

/** Whether a point (shape coordinates: unit radius, rotated) lies inside the shape. */
function inside(shape: ShapeClass, x: number, y: number): boolean {
  switch (shape) {
    case 'circle':
      return x * x + y * y < 0.85 * 0.85;
    case 'square':
      return Math.max(Math.abs(x), Math.abs(y)) < 0.72;
    case 'triangle':
      return polygonContains(x, y, TRIANGLE);
    case 'cross':
      return (Math.abs(x) < 0.95 && Math.abs(y) < 0.3) || (Math.abs(x) < 0.3 && Math.abs(y) < 0.95);
    case 'ring': {
      const r2 = x * x + y * y;
      return r2 < 0.95 * 0.95 && r2 > 0.55 * 0.55;
    }
    case 'star':
      return polygonContains(x, y, STAR);
    default:
      return false;
  }
}

/** The object's colour at pixel centre `(u, v)` for a fill pattern. */
function fillColour(
  fill: FillClass,
  u: number,
  v: number,
  cx: number,
  cy: number,
  angle: number,
  period: number,
  n: number,
  blotch: number[],
  a: Rgb,
  b: Rgb,
): Rgb {
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const p = u * ca + v * sa; // along the pattern direction
  const q = -u * sa + v * ca;
  switch (fill) {
    case 'solid':
      return a;
    case 'stripes':
      return Math.floor(p / period) % 2 !== 0 ? b : a;
    case 'checker':
      return (Math.floor(p / (period * 0.6)) + Math.floor(q / (period * 0.6))) % 2 !== 0 ? b : a;
    case 'dots': {
      const dp = p / period - Math.floor(p / period) - 0.5;
      const dq = q / period - Math.floor(q / period) - 0.5;
      return dp * dp + dq * dq < 0.09 ? b : a;
    }
    case 'rings':
      return Math.floor(Math.hypot(u - cx, v - cy) / (period * 0.6)) % 2 !== 0 ? b : a;
    case 'blotches': {
      const g = 4;
      const gx = (u / n) * g;
      const gy = (v / n) * g;
      const ix = Math.min(g - 1, Math.floor(gx));
      const iy = Math.min(g - 1, Math.floor(gy));
      const fx = gx - ix;
      const fy = gy - iy;
      const at = (i: number, j: number) => blotch[j * (g + 1) + i];
      const t = (at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx) * (1 - fy) + (at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx) * fy;
      return t > 0.5 ? b : a;
    }
    default:
      return a;
  }
}

/** A seeded dataset of shape images (see the file comment). */
export class SyntheticShapes {
  readonly imageSize: number;
  readonly seed: number;
  readonly numClasses: number;
  readonly textures: boolean;
  readonly task: 'shape' | 'fill';
  /** Names of the labels (shapes or fills). */
  readonly classNames: string[];

  constructor(opts: SyntheticShapesOptions = {}) {
    this.imageSize = opts.imageSize ?? 32;
    this.seed = opts.seed ?? 0;
    this.numClasses = opts.numClasses ?? SHAPE_CLASSES.length;
    this.textures = opts.textures ?? true;
    this.task = opts.task ?? 'shape';
    check(this.task === 'shape' || this.task === 'fill', () => `task='${String(this.task)}': expected 'shape' or 'fill'`);
    const names: readonly string[] = this.task === 'shape' ? SHAPE_CLASSES : FILL_CLASSES;
    check(Number.isInteger(this.imageSize) && this.imageSize >= 8, () => `imageSize=${this.imageSize}: expected an integer >= 8`);
    check(
      Number.isInteger(this.numClasses) && this.numClasses >= 2 && this.numClasses <= names.length,
      () => `numClasses=${this.numClasses}: expected an integer in 2..${names.length}`,
    );
    this.classNames = names.slice(0, this.numClasses);
  }

  /** The label of image `index` (classes cycle, so any `numClasses` consecutive images are balanced). */
  label(index: number): number {
    check(Number.isInteger(index) && index >= 0, () => `image index ${index}: expected a non-negative integer`);
    return index % this.numClasses;
  }

  /** Render image `index` as `imageSize * imageSize * 3` floats in [0, 1] (HWC). */
  render(index: number): Float32Array {
    const n = this.imageSize;
    const rnd = rngFor(this.seed, index);
    const fillTask = this.task === 'fill';
    const shape: ShapeClass = fillTask
      ? SHAPE_CLASSES[Math.floor(rnd() * SHAPE_CLASSES.length)]
      : (this.classNames[this.label(index)] as ShapeClass);
    // background: mostly plain or smooth, sometimes a low-contrast texture
    const bgHue = rnd();
    const bgA = hsv(bgHue, 0.2 + 0.4 * rnd(), 0.3 + 0.5 * rnd());
    const bgB = hsv(
      (bgHue + 0.05 + 0.15 * rnd()) % 1,
      0.2 + 0.4 * rnd(),
      Math.min(1, Math.max(0, bgA.reduce((a, b) => Math.max(a, b)) + (rnd() - 0.5) * 0.3)),
    );
    const u0 = rnd();
    const bgKind = !this.textures
      ? 0
      : fillTask
        ? [0, 1, 4][Math.floor(u0 * 3)]
        : u0 < 0.35
          ? 0
          : u0 < 0.65
            ? 1
            : u0 < 0.8
              ? 4
              : u0 < 0.9
                ? 2
                : 3; // solid, gradient, noise, checker, stripes
    const bgAngle = rnd() * Math.PI;
    const bgPeriod = n / (2 + 4 * rnd());
    const noiseGrid = 4;
    const noise = Array.from({ length: (noiseGrid + 1) ** 2 }, () => rnd());
    // shape: contrasting colour, pose and fill
    const fgHue = (bgHue + 0.33 + 0.34 * rnd()) % 1;
    const bgValue = bgA.reduce((a, b) => Math.max(a, b));
    const fgA = hsv(fgHue, 0.6 + 0.4 * rnd(), bgValue < 0.55 ? 0.7 + 0.3 * rnd() : 0.15 + 0.25 * rnd());
    const fgB = hsv((fgHue + 0.5) % 1, 0.5 + 0.5 * rnd(), 0.3 + 0.3 * rnd());
    const stripedDraw = rnd() < 0.35 && this.textures;
    const fill: FillClass = fillTask ? (this.classNames[this.label(index)] as FillClass) : stripedDraw ? 'stripes' : 'solid';
    const fgAngle = rnd() * Math.PI;
    const fgPeriod = fillTask ? n / (5 + 2 * rnd()) : n / (4 + 4 * rnd());
    const blotch = Array.from({ length: 25 }, () => rnd());
    const radius = n * (0.3 + 0.14 * rnd());
    const cx = n / 2 + (rnd() - 0.5) * (n - 2 * radius) * 0.8;
    const cy = n / 2 + (rnd() - 0.5) * (n - 2 * radius) * 0.8;
    const rot = rnd() * 2 * Math.PI;
    const cr = Math.cos(rot);
    const sr = Math.sin(rot);
    const noiseAmp = 0.01 + 0.03 * rnd();

    const out = new Float32Array(n * n * 3);
    const SS = 3; // supersampling per axis (anti-aliased edges)
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        // background colour at the pixel centre
        let t: number;
        const u = x + 0.5;
        const v = y + 0.5;
        const proj = u * Math.cos(bgAngle) + v * Math.sin(bgAngle);
        switch (bgKind) {
          case 0:
            t = 0;
            break;
          case 1:
            t = Math.min(1, Math.max(0, proj / (n * 1.4)));
            break;
          case 2:
            t = (Math.floor(u / bgPeriod) + Math.floor(v / bgPeriod)) % 2;
            break;
          case 3:
            t = Math.floor(proj / bgPeriod) % 2 === 0 ? 0 : 1;
            break;
          default:
            t = valueNoise(noise, noiseGrid, (u / n) * noiseGrid, (v / n) * noiseGrid);
        }
        const bg = mixRgb(bgA, bgB, t);
        // shape coverage
        let cover = 0;
        const far = Math.hypot(u - cx, v - cy) > radius + 1; // every shape lies inside its unit circle
        for (let sy = 0; sy < SS && !far; sy++) {
          for (let sx = 0; sx < SS; sx++) {
            const dx = (x + (sx + 0.5) / SS - cx) / radius;
            const dy = (y + (sy + 0.5) / SS - cy) / radius;
            if (inside(shape, dx * cr + dy * sr, -dx * sr + dy * cr)) cover++;
          }
        }
        const a = cover / (SS * SS);
        const fg = a > 0 ? fillColour(fill, u, v, cx, cy, fgAngle, fgPeriod, n, blotch, fgA, fgB) : fgA;
        for (let k = 0; k < 3; k++) {
          const e = (rnd() * 2 - 1) * noiseAmp;
          out[(y * n + x) * 3 + k] = Math.min(1, Math.max(0, bg[k] * (1 - a) + fg[k] * a + e));
        }
      }
    }
    return out;
  }

  /**
   * A batch as tensors: `images` `[B, imageSize, imageSize, 3]` normalised with `(x - mean) / std`
   * (default {@link SHAPES_MEAN} / {@link SHAPES_STD}; pass `[0,0,0]`/`[1,1,1]` for raw [0, 1]
   * pixels) and `labels` `[B]` int32.
   */
  batch(indices: number[], mean: number[] = SHAPES_MEAN, std: number[] = SHAPES_STD): { images: tf.Tensor4D; labels: tf.Tensor1D } {
    check(indices.length > 0, 'batch needs at least one image index');
    const n = this.imageSize;
    const buf = new Float32Array(indices.length * n * n * 3);
    const labels = new Int32Array(indices.length);
    indices.forEach((idx, b) => {
      const im = this.render(idx);
      for (let p = 0; p < n * n; p++) for (let k = 0; k < 3; k++) buf[(b * n * n + p) * 3 + k] = (im[p * 3 + k] - mean[k]) / std[k];
      labels[b] = this.label(idx);
    });
    return { images: tf.tensor4d(buf, [indices.length, n, n, 3]), labels: tf.tensor1d(labels, 'int32') };
  }
}

/** Build a {@link SyntheticShapes} dataset. */
export function syntheticShapes(opts: SyntheticShapesOptions = {}): SyntheticShapes {
  return new SyntheticShapes(opts);
}
