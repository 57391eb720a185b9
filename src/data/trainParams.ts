import { check } from '../errors.js';
import * as ops from './augmentOps.js';
import type { DataConfig } from './dataConfig.js';
import { cropU8, hflipU8, normalizeU8, roundHalfEven, U8Image } from './imageOps.js';
import { PilFilter, pilResize } from './pilResize.js';
import { parseRandAugment, RandAugmentPolicy, randAugmentPlan } from './randAugment.js';
import type { DataRng } from './rng.js';

/** Options of the training transform (timm's `create_transform(is_training=True)` arguments and defaults). */
export interface TrainTransformOptions {
  isTraining: true;
  /** Seed of every random draw: the same seed gives the same sequence of outputs. */
  seed?: number;
  /** RandomResizedCrop area range (default [0.08, 1]). */
  scale?: [number, number];
  /** RandomResizedCrop aspect range (default [3/4, 4/3]). */
  ratio?: [number, number];
  /** Horizontal flip probability (default 0.5). */
  hflip?: number;
  /** Brightness / contrast / saturation jitter (default 0.4; null or 0 off; off with autoAugment). */
  colorJitter?: number | null;
  /** RandAugment policy, e.g. `'rand-m9-mstd0.5-inc1'`. */
  autoAugment?: string | null;
  /** Resize filter of the crop (default `'bilinear'`; `'random'` picks bilinear or bicubic per image). */
  interpolation?: 'random' | 'bilinear' | 'bicubic';
  /** Random erasing probability (default 0). */
  reProb?: number;
  /** Erased values: `'const'` zeros (default) or `'pixel'` per-pixel normal noise. */
  reMode?: 'const' | 'pixel' | 'rand';
  /** Erased regions per image (default 1). */
  reCount?: number;
  /** Normalise (default true); false returns the uint8-valued augmented crop as int32. */
  normalize?: boolean;
}

/** The training transform's options resolved to timm's defaults (what both the per-image and the batched path run). */
export interface TrainSettings {
  height: number;
  width: number;
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  policy: RandAugmentPolicy | null;
  jitter: number;
  interpolation: 'random' | 'bilinear' | 'bicubic';
  reProb: number;
  reMode: 'const' | 'pixel' | 'rand';
  reCount: number;
  /** RandAugment's fill colour, `round(255 * mean)`. */
  fill: number[];
  normalize: boolean;
}

/** Check and resolve the training transform's options against `cfg`. */
export function resolveTrainSettings(cfg: DataConfig, opts: TrainTransformOptions): TrainSettings {
  const [, height, width] = cfg.inputSize;
  const scale = opts.scale ?? [0.08, 1];
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  check(scale[0] > 0 && scale[0] <= scale[1], () => `train transform: scale must be [lo, hi] with 0 < lo <= hi, got [${scale}]`);
  check(ratio[0] > 0 && ratio[0] <= ratio[1], () => `train transform: ratio must be [lo, hi] with 0 < lo <= hi, got [${ratio}]`);
  const policy = opts.autoAugment ? parseRandAugment(opts.autoAugment) : null;
  const jitter = policy && !opts.autoAugment!.includes('3a') ? 0 : opts.colorJitter === null ? 0 : (opts.colorJitter ?? 0.4);
  const interpolation = opts.interpolation ?? 'bilinear';
  check(
    ['random', 'bilinear', 'bicubic'].includes(interpolation),
    () => `train transform: interpolation must be random, bilinear or bicubic, got '${interpolation}'`,
  );
  return {
    height,
    width,
    scale,
    ratio,
    hflip: opts.hflip ?? 0.5,
    policy,
    jitter,
    interpolation,
    reProb: opts.reProb ?? 0,
    reMode: opts.reMode ?? 'const',
    reCount: opts.reCount ?? 1,
    fill: cfg.mean.map((m) => roundHalfEven(255 * m)),
    normalize: opts.normalize !== false,
  };
}

/** timm's `RandomResizedCropAndInterpolation.get_params`: `[top, left, h, w]`. */
export function randomResizedCropParams(
  h: number,
  w: number,
  scale: [number, number],
  ratio: [number, number],
  rng: DataRng,
): [number, number, number, number] {
  const area = h * w;
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = rng.uniform(scale[0], scale[1]) * area;
    const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
    const tw = Math.trunc(roundHalfEven(Math.sqrt(target * aspect)));
    const th = Math.trunc(roundHalfEven(Math.sqrt(target / aspect)));
    if (tw <= w && th <= h && tw > 0 && th > 0) return [rng.randint(0, h - th), rng.randint(0, w - tw), th, tw];
  }
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < Math.min(...ratio)) ch = Math.trunc(roundHalfEven(cw / Math.min(...ratio)));
  else if (inRatio > Math.max(...ratio)) cw = Math.trunc(roundHalfEven(ch * Math.max(...ratio)));
  return [Math.floor((h - ch) / 2), Math.floor((w - cw) / 2), ch, cw];
}

/** torchvision `ColorJitter(b, c, s)`: factors uniform in [max(0, 1 - x), 1 + x], applied in a random order (drawn now, applied later). */
function colorJitterPlan(x: number, rng: DataRng): (img: U8Image) => U8Image {
  const lo = Math.max(0, 1 - x);
  const hi = 1 + x;
  const steps = rng.permutation(3).map((k) => {
    const f = rng.uniform(lo, hi);
    return (img: U8Image) => (k === 0 ? ops.brightness(img, f) : k === 1 ? ops.contrast(img, f) : ops.saturation(img, f));
  });
  return (img) => steps.reduce((cur, step) => step(cur), img);
}

/** One erased rectangle: `values` per pixel and channel (`'pixel'`), per channel (`'rand'`) or null (zeros). */
export interface EraseBox {
  top: number;
  left: number;
  height: number;
  width: number;
  values: Float32Array | null;
  perPixel: boolean;
}

/** timm's `RandomErasing` boxes on an `h x w x c` image (area 2 % - 1/3 over `count`, log-uniform aspect (0.3, 1/0.3)). */
function eraseBoxes(h: number, w: number, c: number, mode: 'const' | 'pixel' | 'rand', count: number, rng: DataRng): EraseBox[] {
  const area = h * w;
  const logR = [Math.log(0.3), Math.log(1 / 0.3)];
  const boxes: EraseBox[] = [];
  for (let n = 0; n < count; n++) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = (rng.uniform(0.02, 1 / 3) * area) / count;
      const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
      const eh = Math.trunc(roundHalfEven(Math.sqrt(target * aspect)));
      const ew = Math.trunc(roundHalfEven(Math.sqrt(target / aspect)));
      if (ew < w && eh < h) {
        const top = rng.randint(0, h - eh);
        const left = rng.randint(0, w - ew);
        const k = mode === 'pixel' ? eh * ew * c : mode === 'rand' ? c : 0;
        const values = k ? new Float32Array(k) : null;
        for (let i = 0; i < k; i++) values![i] = rng.gauss();
        boxes.push({ top, left, height: eh, width: ew, values, perPixel: mode === 'pixel' });
        break;
      }
    }
  }
  return boxes;
}

/** Write erase boxes into image `b` of an NHWC float buffer (`mask`, if given, marks the erased values with 1). */
export function applyEraseBoxes(x: Float32Array, b: number, h: number, w: number, c: number, boxes: EraseBox[], mask?: Uint8Array): void {
  for (const { top, left, height, width, values, perPixel } of boxes) {
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < width; xx++) {
        const o = ((b * h + top + y) * w + left + xx) * c;
        for (let ch = 0; ch < c; ch++) {
          x[o + ch] = values ? values[perPixel ? (y * width + xx) * c + ch : ch] : 0;
          if (mask) mask[o + ch] = 1;
        }
      }
    }
  }
}

/** Every random choice the training transform makes for one image, in timm's order. */
export interface TrainDraws {
  crop: [number, number, number, number];
  filter: PilFilter;
  flip: boolean;
  /** RandAugment or colour jitter, drawn; null when neither is on. */
  augment: ((img: U8Image) => U8Image) | null;
  /** Random erasing boxes (on the normalised image); empty when not erased. */
  erase: EraseBox[];
}

/**
 * Draw one image's random choices: crop, filter, flip, RandAugment / colour jitter, random erasing (the
 * order of timm's `transforms_imagenet_train`, none depending on the pixels). Both the per-image and the
 * batched transform draw through this, so the same seed gives both the same choices.
 */
export function drawTrainParams(h: number, w: number, s: TrainSettings, rng: DataRng): TrainDraws {
  const crop = randomResizedCropParams(h, w, s.scale, s.ratio, rng);
  const filter: PilFilter = s.interpolation === 'random' ? rng.choice(['bilinear', 'bicubic'] as const) : s.interpolation;
  const flip = s.hflip > 0 && rng.random() < s.hflip;
  const augment = s.policy
    ? randAugmentPlan(s.policy, rng, { fill: s.fill, interpolation: s.interpolation })
    : s.jitter > 0
      ? colorJitterPlan(s.jitter, rng)
      : null;
  const erase = s.normalize && s.reProb > 0 && rng.random() < s.reProb ? eraseBoxes(s.height, s.width, 3, s.reMode, s.reCount, rng) : [];
  return { crop, filter, flip, augment, erase };
}

/**
 * The training transform of one image after its draws, in JavaScript: crop, Pillow resize, flip,
 * RandAugment / colour jitter; then `x / 255`, normalise and erase (float32), or the uint8 crop when
 * `normalize` is off. The crop may come from a larger (padded) `src`: it lies inside the image.
 */
export function applyTrainDraws(src: U8Image, d: TrainDraws, s: TrainSettings, cfg: DataConfig): Float32Array | Uint8Array {
  const { height: th, width: tw } = s;
  const [top, left, ch, cw] = d.crop;
  const crop = cropU8(src, top, left, ch, cw);
  let img: U8Image = { data: pilResize(crop.data, ch, cw, 3, th, tw, d.filter), height: th, width: tw, channels: 3 };
  if (d.flip) img = hflipU8(img);
  if (d.augment) img = d.augment(img);
  if (!s.normalize) return img.data;
  const x = normalizeU8(img, cfg.mean, cfg.std);
  applyEraseBoxes(x, 0, th, tw, 3, d.erase);
  return x;
}
