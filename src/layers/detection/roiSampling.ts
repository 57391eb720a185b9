import * as tf from '@tensorflow/tfjs';
import { floatValues } from './util.js';

const f = Math.fround;

/**
 * The RoIAlign machinery shared by `roiAlign` and `MultiScaleRoiAlign`: torchvision's CPU-kernel sample
 * points (float32), and two ways to apply them. On the backends whose tensors live in JavaScript / wasm
 * memory (cpu, wasm) the bilinear sampling runs as one JavaScript loop over the NHWC values (channels
 * innermost: each bin reads every pixel its samples touch once, as one contiguous channel vector, with the
 * summed weight, see {@link AxisBins}) inside a `tf.customGrad` whose gradient scatters the upstream
 * gradient back with the same weights. Elsewhere (webgl, webgpu: reading a tensor back is a GPU sync) a
 * sparse sampling plan is applied by tf ops: one gather, one product and one reduction.
 */

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

/**
 * The sample points of one RoI along one axis, as torchvision's CPU kernel (`roi_align_forward_kernel_impl`,
 * float32): entry `p * grid + i` is sample `i` of output bin `p`, between pixels `lo` and `hi` with weights
 * `wlo = 1 - l` and `whi = l`; `valid` is 0 where the sample lies outside `[-1, size]` (it then contributes 0
 * but still counts in the bin's average).
 */
export interface AxisSamples {
  grid: number;
  lo: Int32Array;
  hi: Int32Array;
  wlo: Float32Array;
  whi: Float32Array;
  valid: Uint8Array;
}

function axisSamples(start: number, binSize: number, out: number, gridSize: number, size: number): AxisSamples {
  // an inverted box with aligned=True and adaptive sampling has a negative grid: no samples, as the kernel's loops
  const grid = Math.max(gridSize, 0);
  const n = out * grid;
  const a: AxisSamples = {
    grid,
    lo: new Int32Array(n),
    hi: new Int32Array(n),
    wlo: new Float32Array(n),
    whi: new Float32Array(n),
    valid: new Uint8Array(n),
  };
  for (let p = 0; p < out; p++) {
    for (let i = 0; i < grid; i++) {
      const t = p * grid + i;
      let v = f(f(start + f(p * binSize)) + f(f(f(i + 0.5) * binSize) / grid));
      if (v < -1 || v > size) continue;
      if (v <= 0) v = 0;
      let lo = Math.trunc(v);
      let hi: number;
      if (lo >= size - 1) {
        hi = lo = size - 1;
        v = lo;
      } else hi = lo + 1;
      const l = f(v - lo);
      a.lo[t] = lo;
      a.hi[t] = hi;
      a.whi[t] = l;
      a.wlo[t] = f(1 - l);
      a.valid[t] = 1;
    }
  }
  return a;
}

/** The sample points of one RoI, per axis (a bin's points are the product of its two axes' points), and how many a bin averages. */
export interface RoiSamples {
  y: AxisSamples;
  x: AxisSamples;
  count: number;
}

/** Sample points of a box `(x1, y1, x2, y2)` (input coordinates) on a `height x width` map, as torchvision's CPU kernel. */
export function roiSamples(
  box: ArrayLike<number>,
  height: number,
  width: number,
  outH: number,
  outW: number,
  spatialScale: number,
  samplingRatio: number,
  aligned: boolean,
): RoiSamples {
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
  return { y: axisSamples(sh, bh, outH, gh, height), x: axisSamples(sw, bw, outW, gw, width), count: Math.max(gh * gw, 1) };
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
  planSamples(
    plan,
    roiSamples(box, height, width, outH, outW, spatialScale, samplingRatio, aligned),
    width,
    rowOffset,
    segOffset,
    outH,
    outW,
  );
}

function planSamples(
  plan: PlanBuilder,
  s: RoiSamples,
  width: number,
  rowOffset: number,
  segOffset: number,
  outH: number,
  outW: number,
): void {
  const { y, x } = s;
  const inv = 1 / s.count;
  for (let ph = 0; ph < outH; ph++) {
    for (let pw = 0; pw < outW; pw++) {
      const seg = segOffset + ph * outW + pw;
      for (let yi = ph * y.grid; yi < (ph + 1) * y.grid; yi++) {
        if (!y.valid[yi]) continue;
        for (let xi = pw * x.grid; xi < (pw + 1) * x.grid; xi++) {
          if (!x.valid[xi]) continue;
          const ws = [f(y.wlo[yi] * x.wlo[xi]), f(y.wlo[yi] * x.whi[xi]), f(y.whi[yi] * x.wlo[xi]), f(y.whi[yi] * x.whi[xi])];
          const ps = [y.lo[yi] * width + x.lo[xi], y.lo[yi] * width + x.hi[xi], y.hi[yi] * width + x.lo[xi], y.hi[yi] * width + x.hi[xi]];
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

/** How RoIAlign applies its samples: `auto` (JavaScript loop on cpu / wasm, tf ops elsewhere), or one of them everywhere. */
export type RoiAlignPath = 'auto' | 'js' | 'ops';
let path: RoiAlignPath = 'auto';

/** Force one RoIAlign path (tests compare them); returns the previous setting. */
export function setRoiAlignPath(p: RoiAlignPath): RoiAlignPath {
  const old = path;
  path = p;
  return old;
}

/** Whether RoIAlign runs its JavaScript loop on the active backend. */
export function roiAlignUsesJs(): boolean {
  if (path !== 'auto') return path === 'js';
  const b = tf.getBackend();
  return b === 'cpu' || b === 'wasm';
}

/** RoIs to pool: box `k` (input coordinates, `boxes[4k .. 4k + 4]`) from image `batch[k]` of map `level[k]`, scaled by `scales[level[k]]`. */
export interface RoiSet {
  boxes: Float32Array;
  batch: Int32Array;
  level: Int32Array;
  scales: number[];
}

/**
 * The pixels the valid samples of each output bin touch along one axis, with their summed bilinear
 * weights (zero weights dropped): bin `p` owns entries `start[p] .. start[p + 1]`. A bin's weight on pixel
 * `(r, col)` is the product of its two axes' weights (the sum over its sample grid of the four corner
 * weights factorises), so each pixel is read once per bin however many of the bin's samples touch it.
 */
interface AxisBins {
  start: Int32Array;
  idx: Int32Array;
  w: Float64Array;
  /** The most entries of one bin. */
  most: number;
}

function axisBins(a: AxisSamples, out: number): AxisBins {
  const start = new Int32Array(out + 1);
  const idx: number[] = [];
  const w: number[] = [];
  let most = 0;
  for (let p = 0; p < out; p++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let t = p * a.grid; t < (p + 1) * a.grid; t++) {
      if (!a.valid[t]) continue;
      lo = Math.min(lo, a.lo[t]);
      hi = Math.max(hi, a.hi[t]);
    }
    if (lo <= hi) {
      const acc = new Float64Array(hi - lo + 1);
      for (let t = p * a.grid; t < (p + 1) * a.grid; t++) {
        if (!a.valid[t]) continue;
        acc[a.lo[t] - lo] += a.wlo[t];
        acc[a.hi[t] - lo] += a.whi[t];
      }
      for (let r = 0; r < acc.length; r++) {
        if (acc[r] === 0) continue;
        idx.push(lo + r);
        w.push(acc[r]);
      }
    }
    start[p + 1] = idx.length;
    most = Math.max(most, start[p + 1] - start[p]);
  }
  return { start, idx: Int32Array.from(idx), w: Float64Array.from(w), most };
}

/** What one RoI reads: its per-axis bin weights and count, which map, the element offset of its image there, the row stride. */
interface RoiJob {
  y: AxisBins;
  x: AxisBins;
  count: number;
  map: number;
  base: number;
  rowStride: number;
}

/**
 * RoIAlign of `rois` over NHWC `maps` (same batch and channels): `[K, outH, outW, C]`, differentiable in
 * every map. Validation is the caller's.
 */
export function poolRois(
  maps: tf.Tensor4D[],
  rois: RoiSet,
  outH: number,
  outW: number,
  samplingRatio: number,
  aligned: boolean,
): tf.Tensor4D {
  const c = maps[0].shape[3];
  const k = rois.batch.length;
  const samples: RoiSamples[] = [];
  for (let i = 0; i < k; i++) {
    const [, h, w] = maps[rois.level[i]].shape;
    samples.push(roiSamples(rois.boxes.subarray(4 * i, 4 * i + 4), h, w, outH, outW, rois.scales[rois.level[i]], samplingRatio, aligned));
  }
  if (!roiAlignUsesJs()) {
    const offsets: number[] = [];
    let rows = 0;
    for (const m of maps) {
      offsets.push(rows);
      rows += m.shape[0] * m.shape[1] * m.shape[2];
    }
    const plan = new PlanBuilder();
    samples.forEach((s, i) => {
      const [, h, w] = maps[rois.level[i]].shape;
      planSamples(plan, s, w, offsets[rois.level[i]] + rois.batch[i] * h * w, i * outH * outW, outH, outW);
    });
    return tf.tidy(() => {
      const flat = (
        maps.length === 1
          ? tf.reshape(maps[0], [-1, c])
          : tf.concat(
              maps.map((m) => tf.reshape(m, [-1, c])),
              0,
            )
      ) as tf.Tensor2D;
      return tf.reshape(applyPlan(flat, plan.build(), k * outH * outW), [k, outH, outW, c]) as tf.Tensor4D;
    });
  }
  const jobs: RoiJob[] = samples.map((s, i) => {
    const [, h, w] = maps[rois.level[i]].shape;
    return {
      y: axisBins(s.y, outH),
      x: axisBins(s.x, outW),
      count: s.count,
      map: rois.level[i],
      base: rois.batch[i] * h * w * c,
      rowStride: w * c,
    };
  });
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const values = (args.slice(0, maps.length) as tf.Tensor[]).map(floatValues);
    const value = tf.tensor4d(sampleLoop(values, null, jobs, outH, outW, c), [k, outH, outW, c]);
    const gradFunc = (dy: tf.Tensor) => {
      const grads = maps.map((m) => new Float32Array(m.size));
      sampleLoop(grads, floatValues(dy), jobs, outH, outW, c);
      return grads.map((g, i) => tf.tensor4d(g, maps[i].shape));
    };
    return { value, gradFunc };
  });
  return op(...maps) as tf.Tensor4D;
}

/**
 * The sampling loop over every bin of every RoI and the pixels it reads, with weight
 * `wy * wx / count` (NHWC: a pixel is `C` contiguous values). Forward (`dy` null): returns the bins,
 * each the weighted sum of its pixels' channel vectors. Backward: adds every bin's `dy` row, weighted,
 * into its pixels of `maps` (the gradients, zero-filled by the caller).
 */
function sampleLoop(maps: Float32Array[], dy: Float32Array | null, jobs: RoiJob[], outH: number, outW: number, c: number): Float32Array {
  const out = dy ?? new Float32Array(jobs.length * outH * outW * c);
  let most = 0;
  for (const j of jobs) most = Math.max(most, j.y.most * j.x.most);
  const pix = new Int32Array(most);
  const wts = new Float64Array(most);
  jobs.forEach(({ y, x, count, map, base, rowStride }, k) => {
    const v = maps[map];
    for (let ph = 0; ph < outH; ph++) {
      for (let pw = 0; pw < outW; pw++) {
        let n = 0;
        for (let a = y.start[ph]; a < y.start[ph + 1]; a++) {
          const row = base + y.idx[a] * rowStride;
          const wy = y.w[a] / count;
          for (let b = x.start[pw]; b < x.start[pw + 1]; b++) {
            pix[n] = row + x.idx[b] * c;
            wts[n++] = wy * x.w[b];
          }
        }
        const o = ((k * outH + ph) * outW + pw) * c;
        if (dy) scatterBin(v, dy, o, pix, wts, n, c);
        else gatherBin(out, o, v, pix, wts, n, c);
      }
    }
  });
  return out;
}

/** `out[o + j] = sum_t wts[t] v[pix[t] + j]` for `j < c`, four (then two, one) pixels a pass; the first pass sets, the others add. */
function gatherBin(out: Float32Array, o: number, v: Float32Array, pix: Int32Array, wts: Float64Array, n: number, c: number): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const p1 = pix[t];
    const p2 = pix[t + 1];
    const p3 = pix[t + 2];
    const p4 = pix[t + 3];
    const w1 = wts[t];
    const w2 = wts[t + 1];
    const w3 = wts[t + 2];
    const w4 = wts[t + 3];
    if (t === 0) for (let j = 0; j < c; j++) out[o + j] = w1 * v[p1 + j] + w2 * v[p2 + j] + w3 * v[p3 + j] + w4 * v[p4 + j];
    else for (let j = 0; j < c; j++) out[o + j] += w1 * v[p1 + j] + w2 * v[p2 + j] + w3 * v[p3 + j] + w4 * v[p4 + j];
  }
  for (; t + 2 <= n; t += 2) {
    const p1 = pix[t];
    const p2 = pix[t + 1];
    const w1 = wts[t];
    const w2 = wts[t + 1];
    if (t === 0) for (let j = 0; j < c; j++) out[o + j] = w1 * v[p1 + j] + w2 * v[p2 + j];
    else for (let j = 0; j < c; j++) out[o + j] += w1 * v[p1 + j] + w2 * v[p2 + j];
  }
  if (t < n) {
    const p = pix[t];
    const w = wts[t];
    if (t === 0) for (let j = 0; j < c; j++) out[o + j] = w * v[p + j];
    else for (let j = 0; j < c; j++) out[o + j] += w * v[p + j];
  }
}

/** `g[pix[t] + j] += wts[t] dy[o + j]` for every pixel `t` and `j < c`, four pixels a pass. */
function scatterBin(g: Float32Array, dy: Float32Array, o: number, pix: Int32Array, wts: Float64Array, n: number, c: number): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const p1 = pix[t];
    const p2 = pix[t + 1];
    const p3 = pix[t + 2];
    const p4 = pix[t + 3];
    const w1 = wts[t];
    const w2 = wts[t + 1];
    const w3 = wts[t + 2];
    const w4 = wts[t + 3];
    for (let j = 0; j < c; j++) {
      const d = dy[o + j];
      g[p1 + j] += w1 * d;
      g[p2 + j] += w2 * d;
      g[p3 + j] += w3 * d;
      g[p4 + j] += w4 * d;
    }
  }
  for (; t < n; t++) {
    const p = pix[t];
    const w = wts[t];
    for (let j = 0; j < c; j++) g[p + j] += w * dy[o + j];
  }
}
