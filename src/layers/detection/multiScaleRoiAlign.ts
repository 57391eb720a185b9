import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { inferScale, LevelMapper } from './levelMapper.js';
import { pairSize } from './roiAlign.js';
import { poolRois } from './roiSampling.js';
import { floatValues, ImageSize, int32Tensor } from './util.js';

/** Options of {@link multiScaleRoiAlign} (torchvision `MultiScaleRoIAlign`). */
export interface MultiScaleRoiAlignOptions {
  featmapNames: string[];
  outputSize: number | [number, number];
  samplingRatio: number;
  canonicalScale?: number;
  canonicalLevel?: number;
}

/** Named pyramid levels. */
export type FeatureDict = Map<string, tf.Tensor4D> | Record<string, tf.Tensor4D>;

/**
 * RoIAlign over an FPN (He et al. 2017; Lin et al. 2017, eq. 1): each box is pooled from the level the
 * {@link LevelMapper} assigns it, all levels in one pass (see `roiSampling.ts`).
 */
export class MultiScaleRoiAlign {
  readonly featmapNames: string[];
  readonly outputSize: [number, number];
  readonly samplingRatio: number;
  readonly canonicalScale: number;
  readonly canonicalLevel: number;
  constructor(opts: MultiScaleRoiAlignOptions) {
    check(
      Array.isArray(opts?.featmapNames) && opts.featmapNames.length > 0,
      () => `multiScaleRoiAlign: featmapNames must be a non-empty list, got ${JSON.stringify(opts?.featmapNames)}`,
    );
    this.featmapNames = [...opts.featmapNames];
    this.outputSize = pairSize(opts.outputSize, 'multiScaleRoiAlign');
    this.samplingRatio = opts.samplingRatio;
    this.canonicalScale = opts.canonicalScale ?? 224;
    this.canonicalLevel = opts.canonicalLevel ?? 4;
  }

  /** The used levels in the iteration order of `features`. */
  filter(features: FeatureDict): tf.Tensor4D[] {
    const entries = features instanceof Map ? [...features.entries()] : Object.entries(features);
    const maps = entries.filter(([k]) => this.featmapNames.includes(k)).map(([, v]) => v);
    check(
      maps.length > 0,
      () =>
        `multiScaleRoiAlign: none of the features ${JSON.stringify(entries.map(([k]) => k))} is in featmapNames ${JSON.stringify(this.featmapNames)}`,
    );
    maps.forEach((m, i) =>
      check(
        m.rank === 4 && m.shape[3] === maps[0].shape[3] && m.shape[0] === maps[0].shape[0],
        () => `multiScaleRoiAlign: level ${i} must be NHWC with the batch and channels of level 0, got [${m.shape.join(', ')}]`,
      ),
    );
    return maps;
  }

  /** Scales (feature / image) and the level mapper for the used maps. */
  setup(maps: tf.Tensor4D[], imageSizes: ImageSize[]): { scales: number[]; mapper: LevelMapper | null } {
    check(imageSizes.length > 0, () => 'multiScaleRoiAlign: imageSizes must list at least one image');
    const maxH = Math.max(...imageSizes.map((s) => s[0]));
    const scales = maps.map((m) => inferScale(m.shape[1], maxH));
    if (scales.length === 1) return { scales, mapper: null };
    const kMin = Math.trunc(-Math.fround(Math.log2(scales[0])));
    const kMax = Math.trunc(-Math.fround(Math.log2(scales[scales.length - 1])));
    return { scales, mapper: new LevelMapper({ kMin, kMax, canonicalScale: this.canonicalScale, canonicalLevel: this.canonicalLevel }) };
  }

  private levelValues(
    maps: tf.Tensor4D[],
    boxes: tf.Tensor2D[],
    imageSizes: ImageSize[],
  ): { scales: number[]; levels: Int32Array; all: Float32Array } {
    const { scales, mapper } = this.setup(maps, imageSizes);
    const vals = boxes.map((b, i) => {
      check(b.rank === 2 && b.shape[1] === 4, () => `multiScaleRoiAlign: boxes of image ${i} must be [L, 4], got [${b.shape.join(', ')}]`);
      return floatValues(b);
    });
    const all = new Float32Array(vals.reduce((s, v) => s + v.length, 0));
    let o = 0;
    for (const v of vals) {
      all.set(v, o);
      o += v.length;
    }
    const levels = mapper ? mapper.mapValues(all) : new Int32Array(all.length / 4);
    return { scales, levels, all };
  }

  /** int32 level index of every box (all images concatenated). */
  levels(features: FeatureDict, boxes: tf.Tensor2D[], imageSizes: ImageSize[]): tf.Tensor1D {
    return int32Tensor(this.levelValues(this.filter(features), boxes, imageSizes).levels);
  }

  /** Pooled features `[sum K_i, outH, outW, C]` (NHWC), boxes of image 0 first. */
  forward(features: FeatureDict, boxes: tf.Tensor2D[], imageSizes: ImageSize[]): tf.Tensor4D {
    const maps = this.filter(features);
    return this.pool(maps, boxes, imageSizes);
  }

  /** {@link forward} on the used maps given as a list. */
  pool(maps: tf.Tensor4D[], boxes: tf.Tensor2D[], imageSizes: ImageSize[]): tf.Tensor4D {
    const n = maps[0].shape[0];
    check(boxes.length === n, () => `multiScaleRoiAlign: ${boxes.length} box lists for a batch of ${n}`);
    const { scales, levels, all } = this.levelValues(maps, boxes, imageSizes);
    const batch = new Int32Array(levels.length);
    let k = 0;
    boxes.forEach((b, img) => {
      batch.fill(img, k, k + b.shape[0]);
      k += b.shape[0];
    });
    const [oh, ow] = this.outputSize;
    return poolRois(maps, { boxes: all, batch, level: levels, scales }, oh, ow, this.samplingRatio, false);
  }
}

/** Build a {@link MultiScaleRoiAlign}. */
export function multiScaleRoiAlign(opts: MultiScaleRoiAlignOptions): MultiScaleRoiAlign {
  return new MultiScaleRoiAlign(opts);
}
