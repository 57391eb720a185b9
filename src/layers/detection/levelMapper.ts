import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { checkBoxes, floatValues, int32Tensor } from './util.js';

const f = Math.fround;

/** Options of {@link levelMapper} (torchvision `poolers.LevelMapper`). */
export interface LevelMapperOptions {
  kMin: number;
  kMax: number;
  canonicalScale?: number;
  canonicalLevel?: number;
  eps?: number;
}

/**
 * FPN level of each RoI (Lin et al. 2017, eq. 1): `floor(k0 + log2(sqrt(area) / 224) + eps)` clamped
 * to `[kMin, kMax]`, returned relative to `kMin`; float32 as torchvision.
 */
export class LevelMapper {
  readonly kMin: number;
  readonly kMax: number;
  readonly canonicalScale: number;
  readonly canonicalLevel: number;
  readonly eps: number;
  constructor(opts: LevelMapperOptions) {
    check(
      Number.isInteger(opts.kMin) && Number.isInteger(opts.kMax) && opts.kMin <= opts.kMax,
      () => `levelMapper: kMin / kMax must be integers with kMin <= kMax, got ${opts.kMin}, ${opts.kMax}`,
    );
    this.kMin = opts.kMin;
    this.kMax = opts.kMax;
    this.canonicalScale = opts.canonicalScale ?? 224;
    this.canonicalLevel = opts.canonicalLevel ?? 4;
    this.eps = opts.eps ?? 1e-6;
  }

  /** Level indices (0 = kMin) for plain float32 box values. */
  mapValues(b: Float32Array): Int32Array {
    const n = b.length / 4;
    const out = new Int32Array(n);
    const s0 = f(this.canonicalScale);
    const eps = f(this.eps);
    for (let i = 0; i < n; i++) {
      const area = f(f(b[4 * i + 2] - b[4 * i]) * f(b[4 * i + 3] - b[4 * i + 1]));
      const s = f(Math.sqrt(area));
      const lvl = Math.floor(f(f(this.canonicalLevel + f(Math.log2(f(s / s0)))) + eps));
      out[i] = Math.min(Math.max(lvl, this.kMin), this.kMax) - this.kMin;
    }
    return out;
  }

  /** int32 `[N]` level index of each box (0 = kMin). */
  map(boxes: tf.Tensor2D): tf.Tensor1D {
    checkBoxes(boxes, 'levelMapper.map: boxes');
    return int32Tensor(this.mapValues(floatValues(boxes)));
  }
}

/** Build a {@link LevelMapper}. */
export function levelMapper(opts: LevelMapperOptions): LevelMapper {
  return new LevelMapper(opts);
}

/** torchvision's `MultiScaleRoIAlign.infer_scale`: `2^round(log2(featureSize / imageSize))` in float32. */
export function inferScale(featureSize: number, imageSize: number): number {
  const approx = f(featureSize / imageSize);
  const l = f(Math.log2(approx));
  const r = Math.round(l);
  const even = Math.abs(l % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  return 2 ** even;
}
