import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { resizeWeights } from '../interpolate.js';
import { roiAlign } from './roiAlign.js';
import { checkBoxes, checkImageSize, floatValues, ImageSize, intValues } from './util.js';

const f = Math.fround;

/**
 * Paste `[N, M, M]` mask probabilities into `[N, H, W]` images at their boxes (torchvision
 * `paste_masks_in_image`): the mask is padded by `padding` zeros, the box expanded by the same factor
 * and truncated to integers, the mask resized bilinearly (half-pixel centres) to the box and written
 * into a zero image.
 */
export function pasteMasksInImage(masks: tf.Tensor3D, boxes: tf.Tensor2D, size: ImageSize, opts: { padding?: number } = {}): tf.Tensor3D {
  check(
    masks.rank === 3 && masks.shape[1] === masks.shape[2],
    () => `pasteMasksInImage: masks must be [N, M, M], got [${masks.shape.join(', ')}]`,
  );
  checkBoxes(boxes, 'pasteMasksInImage: boxes');
  checkImageSize(size, 'pasteMasksInImage: size');
  const [n, m] = masks.shape;
  check(boxes.shape[0] === n, () => `pasteMasksInImage: ${boxes.shape[0]} boxes for ${n} masks`);
  const pad = opts.padding ?? 1;
  const [imH, imW] = size;
  const mv = floatValues(masks);
  const bv = floatValues(boxes);
  const mp = m + 2 * pad;
  const scale = f(mp / m);
  const out = new Float32Array(n * imH * imW);
  const padded = new Float64Array(mp * mp);
  for (let i = 0; i < n; i++) {
    padded.fill(0);
    for (let y = 0; y < m; y++) for (let x = 0; x < m; x++) padded[(y + pad) * mp + x + pad] = mv[i * m * m + y * m + x];
    const [x1, y1, x2, y2] = bv.subarray(4 * i, 4 * i + 4);
    const wh = f(f(f(x2 - x1) * 0.5) * scale);
    const hh = f(f(f(y2 - y1) * 0.5) * scale);
    const xc = f(f(x2 + x1) * 0.5);
    const yc = f(f(y2 + y1) * 0.5);
    const bx1 = Math.trunc(f(xc - wh));
    const bx2 = Math.trunc(f(xc + wh));
    const by1 = Math.trunc(f(yc - hh));
    const by2 = Math.trunc(f(yc + hh));
    const w = Math.max(bx2 - bx1 + 1, 1);
    const h = Math.max(by2 - by1 + 1, 1);
    const ry = resizeWeights(mp, h, { mode: 'bilinear' });
    const rx = resizeWeights(mp, w, { mode: 'bilinear' });
    const x0 = Math.max(bx1, 0);
    const xe = Math.min(bx2 + 1, imW);
    const y0 = Math.max(by1, 0);
    const ye = Math.min(by2 + 1, imH);
    if (xe <= x0 || ye <= y0) continue;
    // width pass then height pass over the needed rows / columns only
    const tmp = new Float64Array(mp * (xe - x0));
    for (let r = 0; r < mp; r++) {
      for (let x = x0; x < xe; x++) {
        const ox = x - bx1;
        let s = 0;
        for (let j = 0; j < mp; j++) s += rx[ox * mp + j] * padded[r * mp + j];
        tmp[r * (xe - x0) + x - x0] = s;
      }
    }
    for (let y = y0; y < ye; y++) {
      const oy = y - by1;
      for (let x = x0; x < xe; x++) {
        let s = 0;
        for (let r = 0; r < mp; r++) s += ry[oy * mp + r] * tmp[r * (xe - x0) + x - x0];
        out[i * imH * imW + y * imW + x] = s;
      }
    }
  }
  return tf.tensor3d(out, [n, imH, imW]);
}

/**
 * Mask R-CNN mask targets (torchvision `project_masks_on_boxes`): each proposal's matched gt mask
 * RoI-aligned to `size x size` (scale 1, adaptive sampling, `aligned=False`), soft values `[P, size, size]`.
 */
export function projectMasksOnBoxes(
  gtMasks: tf.Tensor3D,
  boxes: tf.Tensor2D,
  matchedIdxs: tf.Tensor1D | number[],
  size: number,
): tf.Tensor3D {
  check(gtMasks.rank === 3, () => `projectMasksOnBoxes: gtMasks must be [G, H, W], got [${gtMasks.shape.join(', ')}]`);
  checkBoxes(boxes, 'projectMasksOnBoxes: boxes');
  const idx = intValues(matchedIdxs, 'projectMasksOnBoxes: matchedIdxs');
  check(idx.length === boxes.shape[0], () => `projectMasksOnBoxes: ${idx.length} matched indices for ${boxes.shape[0]} boxes`);
  const b = floatValues(boxes);
  const rois = new Float32Array(idx.length * 5);
  for (let i = 0; i < idx.length; i++) {
    check(idx[i] >= 0 && idx[i] < gtMasks.shape[0], () => `projectMasksOnBoxes: matched index ${idx[i]} outside [0, ${gtMasks.shape[0]})`);
    rois[5 * i] = idx[i];
    rois.set(b.subarray(4 * i, 4 * i + 4), 5 * i + 1);
  }
  return tf.tidy(() => {
    const feats = tf.expandDims(gtMasks.toFloat(), 3) as tf.Tensor4D;
    const r = roiAlign(feats, tf.tensor2d(rois, [idx.length, 5]), { outputSize: size, spatialScale: 1, samplingRatio: -1, aligned: false });
    return tf.reshape(r, [idx.length, size, size]) as tf.Tensor3D;
  });
}
