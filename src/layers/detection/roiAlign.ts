import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { floatValues } from './util.js';

const f = Math.fround;

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

/** A sparse bilinear sampling plan: output row `seg[t]` gets `weight[t] * featureRow[index[t]]`. */
export interface SamplingPlan {
  index: Int32Array;
  weight: Float32Array;
  seg: Int32Array;
}

/** Accumulates the entries of a {@link SamplingPlan}. */
export class PlanBuilder {
  private idx: number[] = [];
  private w: number[] = [];
  private s: number[] = [];
  push(index: number, weight: number, seg: number): void {
    this.idx.push(index);
    this.w.push(weight);
    this.s.push(seg);
  }
  build(): SamplingPlan {
    return { index: Int32Array.from(this.idx), weight: Float32Array.from(this.w), seg: Int32Array.from(this.s) };
  }
}

/** Normalise `outputSize` to `[h, w]`. */
export function pairSize(size: number | [number, number], what: string): [number, number] {
  const s: [number, number] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
  check(
    s.every((v) => Number.isInteger(v) && v > 0),
    () => `${what}: outputSize must be a positive integer or [h, w], got ${JSON.stringify(size)}`,
  );
  return s;
}

/**
 * Append the bilinear sample entries of one RoI to `plan`, exactly as torchvision's CPU kernel
 * (`roi_align_forward_kernel_impl`, float32): rows index a flattened `[H * W]` map starting at
 * `rowOffset`; output bins are `segOffset + ph * outW + pw`.
 */
export function planRoi(
  plan: PlanBuilder,
  box: ArrayLike<number>,
  height: number,
  width: number,
  rowOffset: number,
  segOffset: number,
  outH: number,
  outW: number,
  spatialScale: number,
  samplingRatio: number,
  aligned: boolean,
): void {
  const off = aligned ? 0.5 : 0;
  const sc = f(spatialScale);
  const sw = f(f(box[0] * sc) - off);
  const sh = f(f(box[1] * sc) - off);
  const ew = f(f(box[2] * sc) - off);
  const eh = f(f(box[3] * sc) - off);
  let rw = f(ew - sw);
  let rh = f(eh - sh);
  if (!aligned) {
    rw = Math.max(rw, 1);
    rh = Math.max(rh, 1);
  }
  const bh = f(rh / outH);
  const bw = f(rw / outW);
  const gh = samplingRatio > 0 ? samplingRatio : Math.ceil(rh / outH);
  const gw = samplingRatio > 0 ? samplingRatio : Math.ceil(rw / outW);
  const count = Math.max(gh * gw, 1);
  const inv = 1 / count;
  for (let ph = 0; ph < outH; ph++) {
    for (let pw = 0; pw < outW; pw++) {
      const seg = segOffset + ph * outW + pw;
      for (let iy = 0; iy < gh; iy++) {
        const y = f(f(sh + f(ph * bh)) + f(f(f(iy + 0.5) * bh) / gh));
        for (let ix = 0; ix < gw; ix++) {
          let x = f(f(sw + f(pw * bw)) + f(f(f(ix + 0.5) * bw) / gw));
          let yy = y;
          if (yy < -1 || yy > height || x < -1 || x > width) continue;
          if (yy <= 0) yy = 0;
          if (x <= 0) x = 0;
          let yl = Math.trunc(yy);
          let xl = Math.trunc(x);
          let yh: number;
          let xh: number;
          if (yl >= height - 1) {
            yh = yl = height - 1;
            yy = yl;
          } else yh = yl + 1;
          if (xl >= width - 1) {
            xh = xl = width - 1;
            x = xl;
          } else xh = xl + 1;
          const ly = f(yy - yl);
          const lx = f(x - xl);
          const hy = f(1 - ly);
          const hx = f(1 - lx);
          const ws = [f(hy * hx), f(hy * lx), f(ly * hx), f(ly * lx)];
          const ps = [yl * width + xl, yl * width + xh, yh * width + xl, yh * width + xh];
          for (let c = 0; c < 4; c++) if (ws[c] !== 0) plan.push(rowOffset + ps[c], ws[c] * inv, seg);
        }
      }
    }
  }
}

/**
 * Apply a sampling plan to flattened features `[rows, C]`, giving `[numSegments, C]`, differentiable in
 * the features. Small problems on the cpu backend use one dense `[segments, rows]` matmul (its
 * segment-sum kernel is quadratic); otherwise every output row gathers a fixed number of entries
 * (zero-weight padding), multiplies and sums them.
 */
export function applyPlan(flat: tf.Tensor2D, plan: SamplingPlan, numSegments: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, c] = flat.shape;
    const e = plan.index.length;
    if (e === 0 || numSegments === 0) return tf.mul(tf.zeros([numSegments, c]), tf.sum(flat)) as tf.Tensor2D;
    if (tf.getBackend() === 'cpu' && numSegments * n <= 4e7) {
      const m = new Float32Array(numSegments * n);
      for (let t = 0; t < e; t++) m[plan.seg[t] * n + plan.index[t]] += plan.weight[t];
      return tf.matMul(tf.tensor2d(m, [numSegments, n]), flat) as tf.Tensor2D;
    }
    const counts = new Int32Array(numSegments);
    for (let t = 0; t < e; t++) counts[plan.seg[t]]++;
    let width = 0;
    for (let s = 0; s < numSegments; s++) width = Math.max(width, counts[s]);
    const idx = new Int32Array(numSegments * width);
    const w = new Float32Array(numSegments * width);
    counts.fill(0);
    for (let t = 0; t < e; t++) {
      const s = plan.seg[t];
      const k = s * width + counts[s]++;
      idx[k] = plan.index[t];
      w[k] = plan.weight[t];
    }
    const rows = tf.gather(flat, tf.tensor1d(idx, 'int32'));
    const weighted = tf.mul(rows, tf.tensor2d(w, [w.length, 1]));
    return tf.sum(tf.reshape(weighted, [numSegments, width, c]), 1) as tf.Tensor2D;
  });
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
  const [n, h, w, c] = features.shape;
  const [oh, ow] = pairSize(opts.outputSize, 'roiAlign');
  const r = roiValues(rois, 'roiAlign');
  const k = r.length / 5;
  const plan = new PlanBuilder();
  for (let i = 0; i < k; i++) {
    const b = r[5 * i];
    check(Number.isInteger(b) && b >= 0 && b < n, () => `roiAlign: RoI ${i} has batch index ${b}, expected an integer in [0, ${n})`);
    planRoi(
      plan,
      r.subarray(5 * i + 1, 5 * i + 5),
      h,
      w,
      b * h * w,
      i * oh * ow,
      oh,
      ow,
      opts.spatialScale ?? 1,
      opts.samplingRatio ?? -1,
      opts.aligned ?? false,
    );
  }
  return tf.tidy(() => applyPlan(tf.reshape(features, [n * h * w, c]), plan.build(), k * oh * ow).reshape([k, oh, ow, c]) as tf.Tensor4D);
}
