import { check } from '../errors.js';
import * as ops from './augmentOps.js';
import type { U8Image } from './imageOps.js';
import type { DataRng } from './rng.js';

/** Options RandAugment's geometric ops use: fill colour (`round(255 * mean)`) and interpolation. */
export interface AugmentHparams {
  fill: number[];
  /** `'random'`: bilinear or bicubic per op (timm's default with `--train-interpolation random`). */
  interpolation: 'bilinear' | 'bicubic' | 'random';
}

/** A parsed RandAugment policy (`rand-m9-n2-mstd0.5-inc1`), timm's `rand_augment_transform`. */
export interface RandAugmentPolicy {
  magnitude: number;
  numLayers: number;
  magnitudeStd: number;
  magnitudeMax: number;
  prob: number;
  increasing: boolean;
}

const MAX_LEVEL = 10;

/** Parse timm's RandAugment string: `rand` then `-m<mag>`, `-n<layers>`, `-mstd<std>`, `-mmax<max>`, `-p<prob>`, `-inc<0|1>`. */
export function parseRandAugment(config: string): RandAugmentPolicy {
  const parts = config.split('-');
  check(parts[0] === 'rand', () => `autoAugment '${config}': only RandAugment policies ('rand-m9-mstd0.5-inc1') are supported`);
  const p: RandAugmentPolicy = { magnitude: 10, numLayers: 2, magnitudeStd: 0, magnitudeMax: MAX_LEVEL, prob: 0.5, increasing: false };
  for (const c of parts.slice(1)) {
    const m = /^([a-z]+)([\d.]+|inf)$/.exec(c);
    check(m, () => `autoAugment '${config}': cannot parse '${c}'`);
    const [, key, raw] = m;
    const v = raw === 'inf' ? Infinity : Number(raw);
    if (key === 'mstd') p.magnitudeStd = v;
    else if (key === 'mmax') p.magnitudeMax = v;
    else if (key === 'inc') p.increasing = !!v;
    else if (key === 'm') p.magnitude = v;
    else if (key === 'n') p.numLayers = v;
    else if (key === 'p') p.prob = v;
    else if (key === 'w') continue;
    else throw new Error(`autoAugment '${config}': unknown option '${key}'`);
  }
  return p;
}

/** One op: its random arguments are drawn when it is planned, the returned function applies it. */
type Op = (level: number, rng: DataRng, hp: AugmentHparams) => (img: U8Image) => U8Image;

const neg = (v: number, rng: DataRng) => (rng.random() > 0.5 ? -v : v);
const interp = (hp: AugmentHparams, rng: DataRng) =>
  hp.interpolation === 'random' ? rng.choice(['bilinear', 'bicubic'] as const) : hp.interpolation;
const enhance =
  (f: (img: U8Image, x: number) => U8Image, increasing: boolean): Op =>
  (level, rng) => {
    const x = increasing ? 1 + neg(level * 0.9, rng) : level * 1.8 + 0.1;
    return (img) => f(img, x);
  };
const shear =
  (axis: 'x' | 'y'): Op =>
  (l, rng, hp) => {
    const s = neg(l * 0.3, rng);
    const filter = interp(hp, rng);
    return (img) => ops.affine(img, axis === 'x' ? [1, s, 0, 0, 1, 0] : [1, 0, 0, s, 1, 0], filter, hp.fill);
  };
const translate =
  (axis: 'x' | 'y'): Op =>
  (l, rng, hp) => {
    const t = neg(l * 0.45, rng);
    const filter = interp(hp, rng);
    return (img) => ops.affine(img, axis === 'x' ? [1, 0, t * img.width, 0, 1, 0] : [1, 0, 0, 0, 1, t * img.height], filter, hp.fill);
  };

/** timm's `_RAND_TRANSFORMS` / `_RAND_INCREASING_TRANSFORMS` (level = magnitude / max in [0, 1]). */
function opTable(increasing: boolean): [string, Op][] {
  return [
    ['AutoContrast', () => ops.autoContrast],
    ['Equalize', () => ops.equalize],
    ['Invert', () => ops.invert],
    [
      'Rotate',
      (l, rng, hp) => {
        const degrees = neg(l * 30, rng);
        const filter = interp(hp, rng);
        return (img) => ops.rotate(img, degrees, filter, hp.fill);
      },
    ],
    ['Posterize', (l) => (img) => ops.posterize(img, increasing ? 4 - Math.trunc(l * 4) : Math.trunc(l * 4))],
    ['Solarize', (l) => (img) => ops.solarize(img, increasing ? 256 - Math.trunc(l * 256) : Math.trunc(l * 256))],
    ['SolarizeAdd', (l) => (img) => ops.solarizeAdd(img, Math.trunc(l * 110))],
    ['Color', enhance(ops.saturation, increasing)],
    ['Contrast', enhance(ops.contrast, increasing)],
    ['Brightness', enhance(ops.brightness, increasing)],
    ['Sharpness', enhance(ops.sharpness, increasing)],
    ['ShearX', shear('x')],
    ['ShearY', shear('y')],
    ['TranslateXRel', translate('x')],
    ['TranslateYRel', translate('y')],
  ];
}

/** Names of the 15 RandAugment ops of a policy (for docs and tests). */
export function randAugmentOps(policy: RandAugmentPolicy): string[] {
  return opTable(policy.increasing).map(([n]) =>
    policy.increasing && ['Posterize', 'Solarize', 'Color', 'Contrast', 'Brightness', 'Sharpness'].includes(n) ? `${n}Increasing` : n,
  );
}

/**
 * RandAugment (Cubuk et al. 2020) as timm applies it: `numLayers` ops drawn with replacement from the
 * 15, each applied with probability `prob` at `magnitude` (+ Gaussian noise of `magnitudeStd`, clipped
 * to [0, magnitudeMax]; `mstd inf` draws it uniformly).
 */
export function randAugment(img: U8Image, policy: RandAugmentPolicy, rng: DataRng, hp: AugmentHparams): U8Image {
  return randAugmentPlan(policy, rng, hp)(img);
}

/**
 * {@link randAugment} in two steps: every random draw happens now (the same draws, in the same order),
 * the returned function applies the drawn ops to an image later (the draws never depend on the image).
 */
export function randAugmentPlan(policy: RandAugmentPolicy, rng: DataRng, hp: AugmentHparams): (img: U8Image) => U8Image {
  const table = opTable(policy.increasing);
  const steps: ((img: U8Image) => U8Image)[] = [];
  for (let k = 0; k < policy.numLayers; k++) {
    const [, op] = rng.choice(table);
    if (policy.prob < 1 && rng.random() > policy.prob) continue;
    let m = policy.magnitude;
    if (policy.magnitudeStd === Infinity) m = rng.uniform(0, m);
    else if (policy.magnitudeStd > 0) m = rng.gauss(m, policy.magnitudeStd);
    m = Math.max(0, Math.min(policy.magnitudeMax, m));
    steps.push(op(m / MAX_LEVEL, rng, hp));
  }
  return (img) => steps.reduce((cur, step) => step(cur), img);
}
