import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mulberry32 } from '../utils/random.js';
import { hsv, mixRgb, polygonContains, regularPolygon, Rgb, valueNoise } from './shapeRaster.js';
import { SHAPE_CLASSES, SHAPES_MEAN, SHAPES_STD } from './syntheticShapes.js';

/**
 * A procedurally generated, seeded detection / instance-segmentation dataset: each image holds
 * `minObjects..maxObjects` shapes ({@link SHAPE_CLASSES}: circle, square, triangle, ...) of different
 * sizes, colours and rotations on a plain, gradient or smooth-noise background with pixel noise. Every
 * object comes with its class, its box (the tight box of its mask, `(x1, y1, x2, y2)` in pixels, corners
 * on pixel edges) and its binary instance mask. Objects may overlap a little; a later object is drawn
 * on top, and the masks (and boxes) are those of the visible pixels. Image `i` depends only on
 * `(seed, i)`, drawn in JavaScript, so any slice is the same on every platform and backend. With
 * `minImageSize < maxImageSize` the images have different heights and widths (a detector pads them
 * into one batch). Used by the detection demo and its test, where no data can be downloaded.
 */

/** Options of {@link syntheticDetection}. */
export interface SyntheticDetectionOptions {
  /** Side of the square images (default 64); ignored when `minImageSize` / `maxImageSize` are given. */
  imageSize?: number;
  /** Smallest image side (default `imageSize`); height and width are drawn independently. */
  minImageSize?: number;
  /** Largest image side (default `imageSize`). */
  maxImageSize?: number;
  /** Seed of the whole dataset (default 0). */
  seed?: number;
  /** Use the first `numClasses` of {@link SHAPE_CLASSES} (1..6, default 3). */
  numClasses?: number;
  /** Fewest objects per image (default 1). */
  minObjects?: number;
  /** Most objects per image (default 3). */
  maxObjects?: number;
  /** Smallest object side in pixels (default 10). */
  minObjectSize?: number;
  /** Largest object side in pixels (default: 0.6 of the shorter image side). */
  maxObjectSize?: number;
  /** Largest allowed IoU between two objects' boxes (default 0.2; rejected placements are redrawn). */
  maxOverlap?: number;
}

/** One generated image with its annotations. */
export interface DetectionSample {
  height: number;
  width: number;
  /** `height * width * 3` floats in [0, 1] (HWC). */
  image: Float32Array;
  /** Per object `(x1, y1, x2, y2)`: the tight box of its visible mask. */
  boxes: number[][];
  /** Per object its class, `0 .. numClasses - 1`. */
  labels: number[];
  /** Per object a `height * width` 0/1 mask of its visible pixels. */
  masks: Uint8Array[];
}

/** Ground truth of a batch in the layout of the detection heads (`DetTarget`). */
export interface SyntheticDetTarget {
  boxes: tf.Tensor2D;
  labels: number[];
  masks?: tf.Tensor3D;
}

const TRIANGLE = regularPolygon(3, [1]);
const STAR = regularPolygon(5, [1, 0.45]);

/** Whether a point in unit shape coordinates (rotated) lies inside shape `k` of {@link SHAPE_CLASSES}. */
function insideShape(k: number, x: number, y: number): boolean {
  switch (SHAPE_CLASSES[k]) {
    case 'circle':
      return x * x + y * y < 0.9 * 0.9;
    case 'square':
      return Math.max(Math.abs(x), Math.abs(y)) < 0.7;
    case 'triangle':
      return polygonContains(x, y, TRIANGLE);
    case 'cross':
      return (Math.abs(x) < 0.95 && Math.abs(y) < 0.32) || (Math.abs(x) < 0.32 && Math.abs(y) < 0.95);
    case 'ring': {
      const r2 = x * x + y * y;
      return r2 < 0.95 * 0.95 && r2 > 0.5 * 0.5;
    }
    case 'star':
      return polygonContains(x, y, STAR);
    default:
      return false;
  }
}

function boxIou(a: number[], b: number[]): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const i = w * h;
  return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i);
}

/** A seeded dataset of images with several shapes each (see the file comment). */
export class SyntheticDetection {
  readonly seed: number;
  readonly numClasses: number;
  readonly minImageSize: number;
  readonly maxImageSize: number;
  readonly minObjects: number;
  readonly maxObjects: number;
  readonly minObjectSize: number;
  readonly maxObjectSize: number;
  readonly maxOverlap: number;
  /** Names of the classes, in label order. */
  readonly classNames: string[];

  constructor(opts: SyntheticDetectionOptions = {}) {
    const side = opts.imageSize ?? 64;
    this.seed = opts.seed ?? 0;
    this.numClasses = opts.numClasses ?? 3;
    this.minImageSize = opts.minImageSize ?? side;
    this.maxImageSize = opts.maxImageSize ?? Math.max(side, this.minImageSize);
    this.minObjects = opts.minObjects ?? 1;
    this.maxObjects = opts.maxObjects ?? 3;
    this.minObjectSize = opts.minObjectSize ?? 10;
    this.maxObjectSize = opts.maxObjectSize ?? Math.floor(0.6 * this.minImageSize);
    this.maxOverlap = opts.maxOverlap ?? 0.2;
    const int = (v: number, min: number) => Number.isInteger(v) && v >= min;
    check(
      int(this.numClasses, 1) && this.numClasses <= SHAPE_CLASSES.length,
      () => `numClasses=${this.numClasses}: expected an integer in 1..${SHAPE_CLASSES.length}`,
    );
    check(
      int(this.minImageSize, 16) && int(this.maxImageSize, this.minImageSize),
      () => `image sizes ${this.minImageSize}..${this.maxImageSize}: expected integers >= 16, min <= max`,
    );
    check(
      int(this.minObjects, 0) && int(this.maxObjects, Math.max(1, this.minObjects)),
      () => `objects per image ${this.minObjects}..${this.maxObjects}: expected integers, 0 <= min <= max, max >= 1`,
    );
    check(
      int(this.minObjectSize, 4) && int(this.maxObjectSize, this.minObjectSize) && this.maxObjectSize <= this.minImageSize,
      () =>
        `object sizes ${this.minObjectSize}..${this.maxObjectSize}: expected integers, 4 <= min <= max <= the smallest image side ${this.minImageSize}`,
    );
    check(this.maxOverlap >= 0 && this.maxOverlap <= 1, () => `maxOverlap=${this.maxOverlap}: expected a number in [0, 1]`);
    this.classNames = SHAPE_CLASSES.slice(0, this.numClasses);
  }

  /** Generate image `index` with its boxes, labels and masks. */
  sample(index: number): DetectionSample {
    check(Number.isInteger(index) && index >= 0, () => `image index ${index}: expected a non-negative integer`);
    const rnd = mulberry32(Math.imul(this.seed >>> 0, 0x9e3779b1) ^ Math.imul((index + 1) >>> 0, 0x85ebca77) ^ 0x5bd1e995);
    const span = this.maxImageSize - this.minImageSize + 1;
    const height = this.minImageSize + Math.floor(rnd() * span);
    const width = this.minImageSize + Math.floor(rnd() * span);
    // background: plain, linear gradient or smooth noise between two nearby colours
    const bgHue = rnd();
    const bgA = hsv(bgHue, 0.15 + 0.35 * rnd(), 0.35 + 0.4 * rnd());
    const bgB = hsv((bgHue + 0.05 + 0.1 * rnd()) % 1, 0.15 + 0.35 * rnd(), 0.35 + 0.4 * rnd());
    const bgKind = Math.floor(rnd() * 3);
    const bgAngle = rnd() * Math.PI;
    const grid = 4;
    const noise = Array.from({ length: (grid + 1) ** 2 }, () => rnd());
    const noiseAmp = 0.01 + 0.03 * rnd();
    // objects: class, size, centre, rotation, colour; placements overlapping too much are redrawn
    const count = this.minObjects + Math.floor(rnd() * (this.maxObjects - this.minObjects + 1));
    const objs: { k: number; cx: number; cy: number; r: number; cos: number; sin: number; colour: Rgb; box: number[] }[] = [];
    for (let o = 0, tries = 0; o < count && tries < 50 * count; tries++) {
      const k = Math.floor(rnd() * this.numClasses);
      const side = this.minObjectSize + rnd() * (this.maxObjectSize - this.minObjectSize);
      const r = side / 2;
      const cx = r + rnd() * (width - 2 * r);
      const cy = r + rnd() * (height - 2 * r);
      const rot = rnd() * 2 * Math.PI;
      const colour = hsv((bgHue + 0.3 + 0.4 * rnd()) % 1, 0.55 + 0.45 * rnd(), rnd() < 0.5 ? 0.8 + 0.2 * rnd() : 0.1 + 0.15 * rnd());
      const box = [cx - r, cy - r, cx + r, cy + r];
      if (objs.some((p) => boxIou(p.box, box) > this.maxOverlap)) continue;
      objs.push({ k, cx, cy, r, cos: Math.cos(rot), sin: Math.sin(rot), colour, box });
      o++;
    }
    const image = new Float32Array(height * width * 3);
    const owner = new Int16Array(height * width).fill(-1); // which object a pixel's centre belongs to (topmost)
    const SS = 3; // supersampling per axis: anti-aliased edges
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const u = (x + 0.5) / width;
        const v = (y + 0.5) / height;
        let t = 0;
        if (bgKind === 1) t = Math.min(1, Math.max(0, 0.5 + (u - 0.5) * Math.cos(bgAngle) + (v - 0.5) * Math.sin(bgAngle)));
        else if (bgKind === 2) t = valueNoise(noise, grid, u * grid, v * grid);
        const px = mixRgb(bgA, bgB, t);
        objs.forEach((ob, oi) => {
          if (Math.abs(x + 0.5 - ob.cx) > ob.r + 1 || Math.abs(y + 0.5 - ob.cy) > ob.r + 1) return;
          let cover = 0;
          for (let sy = 0; sy < SS; sy++) {
            for (let sx = 0; sx < SS; sx++) {
              const dx = (x + (sx + 0.5) / SS - ob.cx) / ob.r;
              const dy = (y + (sy + 0.5) / SS - ob.cy) / ob.r;
              if (insideShape(ob.k, dx * ob.cos + dy * ob.sin, -dx * ob.sin + dy * ob.cos)) cover++;
            }
          }
          const a = cover / (SS * SS);
          for (let c = 0; c < 3; c++) px[c] = px[c] * (1 - a) + ob.colour[c] * a;
          if (a >= 0.5) owner[y * width + x] = oi;
        });
        for (let c = 0; c < 3; c++) image[(y * width + x) * 3 + c] = Math.min(1, Math.max(0, px[c] + (rnd() * 2 - 1) * noiseAmp));
      }
    }
    const boxes: number[][] = [];
    const labels: number[] = [];
    const masks: Uint8Array[] = [];
    objs.forEach((ob, oi) => {
      const m = new Uint8Array(height * width);
      let x1 = width;
      let y1 = height;
      let x2 = -1;
      let y2 = -1;
      for (let p = 0; p < m.length; p++) {
        if (owner[p] !== oi) continue;
        m[p] = 1;
        const x = p % width;
        const y = (p - x) / width;
        x1 = Math.min(x1, x);
        y1 = Math.min(y1, y);
        x2 = Math.max(x2, x);
        y2 = Math.max(y2, y);
      }
      if (x2 - x1 < 2 || y2 - y1 < 2) return; // (almost) hidden by a later object
      boxes.push([x1, y1, x2 + 1, y2 + 1]);
      labels.push(ob.k);
      masks.push(m);
    });
    return { height, width, image, boxes, labels, masks };
  }

  /**
   * Images and targets of a batch: `images` one `[H_i, W_i, 3]` tensor per image, normalised with
   * `(x - mean) / std` (default {@link SHAPES_MEAN} / {@link SHAPES_STD}); `targets` per image `boxes`
   * `[n, 4]`, `labels` (class + `labelOffset`: 1 for Mask R-CNN, whose class 0 is the background) and,
   * with `masks: true`, `masks` `[n, H_i, W_i]` 0/1.
   */
  batch(
    indices: number[],
    opts: { mean?: number[]; std?: number[]; labelOffset?: number; masks?: boolean } = {},
  ): { images: tf.Tensor3D[]; targets: SyntheticDetTarget[] } {
    check(indices.length > 0, 'batch needs at least one image index');
    const mean = opts.mean ?? SHAPES_MEAN;
    const std = opts.std ?? SHAPES_STD;
    const off = opts.labelOffset ?? 0;
    const images: tf.Tensor3D[] = [];
    const targets: SyntheticDetTarget[] = [];
    for (const i of indices) {
      const s = this.sample(i);
      const px = new Float32Array(s.image.length);
      for (let p = 0; p < px.length; p++) px[p] = (s.image[p] - mean[p % 3]) / std[p % 3];
      images.push(tf.tensor3d(px, [s.height, s.width, 3]));
      const n = s.boxes.length;
      const t: SyntheticDetTarget = { boxes: tf.tensor2d(s.boxes.flat(), [n, 4]), labels: s.labels.map((l) => l + off) };
      if (opts.masks) {
        const m = new Float32Array(n * s.height * s.width);
        s.masks.forEach((mk, j) => m.set(mk, j * s.height * s.width));
        t.masks = tf.tensor3d(m, [n, s.height, s.width]);
      }
      targets.push(t);
    }
    return { images, targets };
  }
}

/** Build a {@link SyntheticDetection} dataset. */
export function syntheticDetection(opts: SyntheticDetectionOptions = {}): SyntheticDetection {
  return new SyntheticDetection(opts);
}
