import { check } from '../errors.js';
import type { DataConfig } from './dataConfig.js';
import { DEFAULT_CROP_PCT } from './dataConfig.js';
import { centerCropOrPadU8, roundHalfEven, U8Image } from './imageOps.js';
import { PIL_FILTERS, PilFilter, pilResize } from './pilResize.js';

/** timm's interpolation name -> Pillow filter (`str_to_interp_mode`). */
export function pilFilterOf(interpolation: string): PilFilter {
  check(
    (PIL_FILTERS as readonly string[]).includes(interpolation),
    () => `interpolation '${interpolation}' is not one of ${PIL_FILTERS.join(', ')}`,
  );
  return interpolation as PilFilter;
}

/** What timm's eval transform does to an `h x w` image: the resize size and filter, then the crop (and pad fill). */
export interface EvalPlan {
  resize: [number, number];
  filter: PilFilter;
  crop: [number, number];
  fill: number[];
}

/**
 * The geometry of timm's `transforms_imagenet_eval` for an `h x w` image: `scale = floor(size / cropPct)`;
 * `center`: torchvision `Resize(scale)` (shorter edge to `scale`, longer `int(scale * long / short)`; for a
 * non-square input size timm's `ResizeKeepRatio`, which is bilinear), then `CenterCrop`; `squash`: resize to
 * `scale x scale`; `border`: `ResizeKeepRatio(longest=1)` then centre crop-or-pad with `round(255 * mean)`.
 */
export function evalPlan(h: number, w: number, cfg: DataConfig): EvalPlan {
  const [, th, tw] = cfg.inputSize;
  const pct = cfg.cropPct || DEFAULT_CROP_PCT;
  const sh = Math.floor(th / pct);
  const sw = Math.floor(tw / pct);
  const filter = pilFilterOf(cfg.interpolation);
  const keepRatio = (longest: number): [number, number] => {
    const rh = h / sh;
    const rw = w / sw;
    const ratio = Math.max(rh, rw) * longest + Math.min(rh, rw) * (1 - longest);
    return [roundHalfEven(h / ratio), roundHalfEven(w / ratio)];
  };
  if (cfg.cropMode === 'squash') return { resize: [sh, sw], filter, crop: [th, tw], fill: [0] };
  if (cfg.cropMode === 'border') {
    return { resize: keepRatio(1), filter, crop: [th, tw], fill: cfg.mean.map((m) => roundHalfEven(255 * m)) };
  }
  if (sh === sw) {
    const s = sh;
    const short = w <= h ? w : h;
    const long = w <= h ? h : w;
    const nl = Math.trunc((s * long) / short);
    return { resize: w <= h ? [nl, s] : [s, nl], filter, crop: [th, tw], fill: [0] };
  }
  return { resize: keepRatio(0), filter: 'bilinear', crop: [th, tw], fill: [0] };
}

/** timm's eval transform up to the uint8 crop (resize with Pillow's resampler, centre crop / pad). */
export function evalResizeCrop(img: U8Image, cfg: DataConfig): U8Image {
  const plan = evalPlan(img.height, img.width, cfg);
  const [rh, rw] = plan.resize;
  check(rh > 0 && rw > 0, () => `eval transform: a ${img.height}x${img.width} image resizes to ${rh}x${rw}`);
  const data = pilResize(img.data, img.height, img.width, img.channels, rh, rw, plan.filter);
  return centerCropOrPadU8({ data, height: rh, width: rw, channels: img.channels }, plan.crop[0], plan.crop[1], plan.fill);
}
