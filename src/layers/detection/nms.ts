import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { checkBoxes, floatValues, int32Tensor, intValues } from './util.js';

const f = Math.fround;

/** Indices of `scores` sorted by decreasing score, stable (equal scores keep index order). */
export function argsortDescending(scores: ArrayLike<number>, indices?: ArrayLike<number>): number[] {
  const idx = indices ? Array.from(indices) : Array.from({ length: scores.length }, (_, i) => i);
  const s = indices ? idx.map((i) => scores[i]) : Array.from(scores);
  const order = idx.map((_, k) => k);
  // NaN sorts first in torch's descending sort; keep it simple: NaN treated as +Infinity
  const key = (k: number) => (s[k] !== s[k] ? Infinity : s[k]);
  order.sort((a, b) => key(b) - key(a) || a - b);
  return order.map((k) => idx[k]);
}

/**
 * Greedy NMS on plain float32 values, exactly as torchvision's CPU kernel: areas and IoUs in float32,
 * a box is suppressed when its IoU with a kept box is `> iouThreshold` (strict), scores sorted stably,
 * corners used as given. Returns the kept indices in decreasing score order.
 */
export function nmsValues(b: ArrayLike<number>, scores: ArrayLike<number>, iouThreshold: number): number[] {
  const n = scores.length;
  const areas = new Float32Array(n);
  for (let i = 0; i < n; i++) areas[i] = f(f(b[4 * i + 2] - b[4 * i]) * f(b[4 * i + 3] - b[4 * i + 1]));
  const order = argsortDescending(scores);
  const suppressed = new Uint8Array(n);
  const keep: number[] = [];
  for (let oi = 0; oi < n; oi++) {
    const i = order[oi];
    if (suppressed[i]) continue;
    keep.push(i);
    const ix1 = b[4 * i];
    const iy1 = b[4 * i + 1];
    const ix2 = b[4 * i + 2];
    const iy2 = b[4 * i + 3];
    const iarea = areas[i];
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj];
      if (suppressed[j]) continue;
      const w = Math.max(0, f(Math.min(ix2, b[4 * j + 2]) - Math.max(ix1, b[4 * j])));
      const h = Math.max(0, f(Math.min(iy2, b[4 * j + 3]) - Math.max(iy1, b[4 * j + 1])));
      const inter = f(w * h);
      const ovr = f(inter / f(f(iarea + areas[j]) - inter));
      if (ovr > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/** Non-maximum suppression (torchvision `nms`): int32 indices of the kept boxes, decreasing score. */
export function nms(boxes: tf.Tensor2D, scores: tf.Tensor1D, iouThreshold: number): tf.Tensor1D {
  checkBoxes(boxes, 'nms: boxes');
  check(
    scores.rank === 1 && scores.shape[0] === boxes.shape[0],
    () => `nms: scores must have shape [${boxes.shape[0]}], got [${scores.shape.join(', ')}]`,
  );
  check(Number.isFinite(iouThreshold), () => `nms: iouThreshold must be a number, got ${iouThreshold}`);
  return int32Tensor(nmsValues(floatValues(boxes), floatValues(scores), iouThreshold));
}

/**
 * {@link nms} per category on plain values (torchvision `batched_nms`): up to 1000 boxes the boxes of
 * category `c` are shifted by `c (max coordinate + 1)` (float32) and one NMS runs; above, NMS runs per
 * category and the kept indices are re-sorted by score.
 */
export function batchedNmsValues(b: Float32Array, scores: Float32Array, idxs: Int32Array, iouThreshold: number): number[] {
  const n = scores.length;
  if (n === 0) return [];
  if (n <= 1000) {
    let maxC = -Infinity;
    for (let i = 0; i < b.length; i++) if (b[i] > maxC) maxC = b[i];
    const step = f(maxC + 1);
    const shifted = new Float32Array(b.length);
    for (let i = 0; i < n; i++) {
      const off = f(idxs[i] * step);
      for (let k = 0; k < 4; k++) shifted[4 * i + k] = f(b[4 * i + k] + off);
    }
    return nmsValues(shifted, scores, iouThreshold);
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = byClass.get(idxs[i]);
    if (l) l.push(i);
    else byClass.set(idxs[i], [i]);
  }
  const keepMask = new Uint8Array(n);
  for (const ids of byClass.values()) {
    const sb = new Float32Array(ids.length * 4);
    const ss = new Float32Array(ids.length);
    ids.forEach((id, k) => {
      sb.set(b.subarray(4 * id, 4 * id + 4), 4 * k);
      ss[k] = scores[id];
    });
    for (const k of nmsValues(sb, ss, iouThreshold)) keepMask[ids[k]] = 1;
  }
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (keepMask[i]) kept.push(i);
  return argsortDescending(scores, kept);
}

/** Category-wise NMS (torchvision `batched_nms`): boxes of different `idxs` never suppress each other. */
export function batchedNms(boxes: tf.Tensor2D, scores: tf.Tensor1D, idxs: tf.Tensor1D | number[], iouThreshold: number): tf.Tensor1D {
  checkBoxes(boxes, 'batchedNms: boxes');
  const n = boxes.shape[0];
  check(scores.rank === 1 && scores.shape[0] === n, () => `batchedNms: scores must have shape [${n}], got [${scores.shape.join(', ')}]`);
  const ids = intValues(idxs, 'batchedNms: idxs');
  check(ids.length === n, () => `batchedNms: idxs must have ${n} entries, got ${ids.length}`);
  return int32Tensor(batchedNmsValues(floatValues(boxes), floatValues(scores), ids, iouThreshold));
}
