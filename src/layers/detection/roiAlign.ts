import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { poolRois } from './roiSampling.js';
import { floatValues } from './util.js';

/** Options of {@link roiAlign} (torchvision `roi_align`). */
export interface RoiAlignOptions {
  outputSize: number | [number, number];
  /** Box coordinates -> feature coordinates. Default 1. */
  spatialScale?: number;
  /** Sample points per bin and axis; `<= 0`: adaptive `ceil(roi size / output size)`. Default -1. */
  samplingRatio?: number;
  /** Shift by -0.5 pixel (pixel-centre model, Detectron2's `aligned=True`). Default false. */
  aligned?: boolean;
}

export { applyPlan, planRoi, PlanBuilder } from './roiSampling.js';
export type { SamplingPlan } from './roiSampling.js';

/** Normalise `outputSize` to `[h, w]`. */
export function pairSize(size: number | [number, number], what: string): [number, number] {
  const s: [number, number] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  check(
    s.every((v) => Number.isInteger(v) && v > 0),
    () => `${what}: outputSize must be a positive integer or [h, w], got ${JSON.stringify(size)}`,
  );
  return s;
}

/** RoIs as `[K, 5]` values `(batch index, x1, y1, x2, y2)` from a `[K, 5]` tensor or per-image `[L, 4]` boxes. */
export function roiValues(rois: tf.Tensor2D | tf.Tensor2D[], what: string): Float32Array {
  if (Array.isArray(rois)) {
    const parts = rois.map((b, i) => {
      check(b.rank === 2 && b.shape[1] === 4, () => `${what}: boxes of image ${i} must be [L, 4], got [${b.shape.join(', ')}]`);
      const v = floatValues(b);
      const out = new Float32Array((v.length / 4) * 5);
      for (let k = 0; k < v.length / 4; k++) {
        out[5 * k] = i;
        out.set(v.subarray(4 * k, 4 * k + 4), 5 * k + 1);
      }
      return out;
    });
    const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  }
  check(
    rois.rank === 2 && rois.shape[1] === 5,
    () => `${what}: rois must be [K, 5] (batch index, x1, y1, x2, y2) or a list of [L, 4], got [${rois.shape.join(', ')}]`,
  );
  return floatValues(rois);
}

/**
 * RoIAlign (He et al. 2017, sec. 3; torchvision `roi_align`) on NHWC features: `[K, outH, outW, C]`.
 * Bilinear samples as torchvision's CPU kernel (points beyond `[-1, H]` contribute 0 but count in
 * the average). Differentiable in `features`.
 */
export function roiAlign(features: tf.Tensor4D, rois: tf.Tensor2D | tf.Tensor2D[], opts: RoiAlignOptions): tf.Tensor4D {
  check(features.rank === 4, () => `roiAlign: features must be NHWC [N, H, W, C], got shape [${features.shape.join(', ')}]`);
  const n = features.shape[0];
  const [oh, ow] = pairSize(opts.outputSize, 'roiAlign');
  const r = roiValues(rois, 'roiAlign');
  const k = r.length / 5;
  const boxes = new Float32Array(4 * k);
  const batch = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const b = r[5 * i];
    check(Number.isInteger(b) && b >= 0 && b < n, () => `roiAlign: RoI ${i} has batch index ${b}, expected an integer in [0, ${n})`);
    batch[i] = b;
    boxes.set(r.subarray(5 * i + 1, 5 * i + 5), 4 * i);
  }
  const rs = { boxes, batch, level: new Int32Array(k), scales: [opts.spatialScale ?? 1] };
  return poolRois([features], rs, oh, ow, opts.samplingRatio ?? -1, opts.aligned ?? false);
}
