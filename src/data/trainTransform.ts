import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import * as ops from './augmentOps.js';
import type { DataConfig } from './dataConfig.js';
import { cropU8, hflipU8, normalizeU8, roundHalfEven, U8Image } from './imageOps.js';
import { PilFilter, pilResize } from './pilResize.js';
import { parseRandAugment, randAugment } from './randAugment.js';
import { DataRng } from './rng.js';
import { ImageTransform, tensorToU8 } from './tensorImage.js';

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

/** torchvision `ColorJitter(b, c, s)`: factors uniform in [max(0, 1 - x), 1 + x], applied in a random order. */
function colorJitter(img: U8Image, x: number, rng: DataRng): U8Image {
  let cur = img;
  const lo = Math.max(0, 1 - x);
  const hi = 1 + x;
  for (const k of rng.permutation(3)) {
    const f = rng.uniform(lo, hi);
    cur = k === 0 ? ops.brightness(cur, f) : k === 1 ? ops.contrast(cur, f) : ops.saturation(cur, f);
  }
  return cur;
}

/** timm's `RandomErasing` on a normalised HWC float image (area 2 % - 1/3, log-uniform aspect (0.3, 1/0.3)). */
function randomErase(
  x: Float32Array,
  h: number,
  w: number,
  c: number,
  mode: 'const' | 'pixel' | 'rand',
  count: number,
  rng: DataRng,
): void {
  const area = h * w;
  const logR = [Math.log(0.3), Math.log(1 / 0.3)];
  for (let n = 0; n < count; n++) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = (rng.uniform(0.02, 1 / 3) * area) / count;
      const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
      const eh = Math.trunc(roundHalfEven(Math.sqrt(target * aspect)));
      const ew = Math.trunc(roundHalfEven(Math.sqrt(target / aspect)));
      if (ew < w && eh < h) {
        const top = rng.randint(0, h - eh);
        const left = rng.randint(0, w - ew);
        const colour = mode === 'rand' ? Array.from({ length: c }, () => rng.gauss()) : null;
        for (let y = top; y < top + eh; y++) {
          for (let xx = left; xx < left + ew; xx++) {
            for (let ch = 0; ch < c; ch++) x[(y * w + xx) * c + ch] = mode === 'const' ? 0 : colour ? colour[ch] : rng.gauss();
          }
        }
        break;
      }
    }
  }
}

/**
 * timm's `transforms_imagenet_train`: RandomResizedCrop (area `scale`, log-uniform aspect `ratio`, 10
 * tries then a centred crop; Pillow resize with `interpolation`), horizontal flip, then RandAugment
 * (`autoAugment`) or colour jitter, `x / 255`, normalise, random erasing. Seeded: the same seed gives
 * the same sequence of outputs.
 */
export function createTrainTransform(cfg: DataConfig, opts: TrainTransformOptions): ImageTransform {
  const [, th, tw] = cfg.inputSize;
  const scale = opts.scale ?? [0.08, 1];
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  check(scale[0] > 0 && scale[0] <= scale[1], () => `train transform: scale must be [lo, hi] with 0 < lo <= hi, got [${scale}]`);
  check(ratio[0] > 0 && ratio[0] <= ratio[1], () => `train transform: ratio must be [lo, hi] with 0 < lo <= hi, got [${ratio}]`);
  const hflip = opts.hflip ?? 0.5;
  const policy = opts.autoAugment ? parseRandAugment(opts.autoAugment) : null;
  const jitter = policy && !opts.autoAugment!.includes('3a') ? 0 : opts.colorJitter === null ? 0 : (opts.colorJitter ?? 0.4);
  const interpolation = opts.interpolation ?? 'bilinear';
  check(
    ['random', 'bilinear', 'bicubic'].includes(interpolation),
    () => `train transform: interpolation must be random, bilinear or bicubic, got '${interpolation}'`,
  );
  const reProb = opts.reProb ?? 0;
  const reMode = opts.reMode ?? 'const';
  const reCount = opts.reCount ?? 1;
  const fill = cfg.mean.map((m) => roundHalfEven(255 * m));
  const rng = new DataRng(opts.seed);
  return (image: tf.Tensor3D) => {
    const src = tensorToU8(image, 'train transform');
    const [top, left, ch, cw] = randomResizedCropParams(src.height, src.width, scale, ratio, rng);
    const filter: PilFilter = interpolation === 'random' ? rng.choice(['bilinear', 'bicubic'] as const) : interpolation;
    const crop = cropU8(src, top, left, ch, cw);
    let img: U8Image = { data: pilResize(crop.data, ch, cw, 3, th, tw, filter), height: th, width: tw, channels: 3 };
    if (hflip > 0 && rng.random() < hflip) img = hflipU8(img);
    if (policy) img = randAugment(img, policy, rng, { fill, interpolation: interpolation === 'random' ? 'random' : interpolation });
    else if (jitter > 0) img = colorJitter(img, jitter, rng);
    if (opts.normalize === false) return tf.tensor3d(Int32Array.from(img.data), [th, tw, 3], 'int32');
    const x = normalizeU8(img, cfg.mean, cfg.std);
    if (reProb > 0 && rng.random() < reProb) randomErase(x, th, tw, 3, reMode, reCount, rng);
    return tf.tensor3d(x, [th, tw, 3], 'float32');
  };
}
