import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { resizeGrid, resizeWeights } from '../../layers/interpolate.js';
import type { Triple } from './windows3d.js';

/**
 * Checkpoint adaptation of the Video Swin / BEVT loaders (`inflate_weights` and the 3-D loading path of
 * `SwinTransformer3D.init_weights` in the official code).
 */

/** Strip the `module.`, `backbone.`, `encoder.` prefixes in that order (the reference's `re.sub` chain). */
export function stripVideoPrefixes(sd: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k0, v] of Object.entries(sd)) {
    let k = k0;
    for (const p of ['module.', 'backbone.', 'encoder.']) if (k.startsWith(p)) k = k.slice(p.length);
    out[k] = v;
  }
  return out;
}

/**
 * timm places Swin's patch merging at the start of stage i+1 (`layers.{i+1}.downsample`); the official
 * 2-D and 3-D codes at the end of stage i. Renames timm's layout to the official one (no-op otherwise).
 */
export function swinDownsampleToEnd(sd: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const keys = Object.keys(sd);
  const timm = !keys.some((k) => k.startsWith('layers.0.downsample.')) && keys.some((k) => /^layers\.1\.downsample\./.test(k));
  if (!timm) return sd;
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(sd)) {
    const m = /^layers\.(\d+)\.downsample\.(.*)$/.exec(k);
    out[m ? `layers.${Number(m[1]) - 1}.downsample.${m[2]}` : k] = v;
  }
  return out;
}

/** `weight.unsqueeze(2).repeat(1, 1, pt, 1, 1) / pt`: a 2-D patch kernel `[C, in, ph, pw]` inflated over time. */
export function inflatePatchKernel(w: tf.Tensor, pt: number): tf.Tensor {
  return tf.tidy(() => {
    const [o, i, ph, pw] = w.shape;
    return tf.div(tf.tile(w.reshape([o, i, 1, ph * pw]), [1, 1, pt, 1]), pt).reshape([o, i, pt, ph, pw]);
  });
}

/** A `[L, heads]` table as per-head planes (float64) and back. */
function tableToPlanes(table: tf.Tensor): { planes: Float64Array[]; heads: number; len: number } {
  const [len, heads] = table.shape as [number, number];
  const v = table.dataSync();
  const planes = Array.from({ length: heads }, (_, h) => {
    const p = new Float64Array(len);
    for (let r = 0; r < len; r++) p[r] = v[r * heads + h];
    return p;
  });
  return { planes, heads, len };
}

function planesToTable(planes: ArrayLike<number>[], len: number): tf.Tensor2D {
  const heads = planes.length;
  const out = new Float32Array(len * heads);
  planes.forEach((p, h) => {
    for (let r = 0; r < len; r++) out[r * heads + h] = p[r];
  });
  return tf.tensor2d(out, [len, heads]);
}

/**
 * BEVT's inflation of a 2-D Swin bias table `[(2S-1)^2, heads]` to a 3-D window: bicubically resized to
 * `(2wh - 1, 2ww - 1)` when the sizes differ, then tiled `2wd - 1` times (every temporal offset gets
 * the 2-D table).
 */
export function inflateBiasTable(table: tf.Tensor, window: Triple): tf.Tensor2D {
  const [wd, wh, ww] = window;
  const l2 = (2 * wh - 1) * (2 * ww - 1);
  const { planes, len } = tableToPlanes(table);
  let resized: ArrayLike<number>[] = planes;
  if (len !== l2) {
    const s1 = Math.floor(Math.sqrt(len));
    check(s1 * s1 === len, () => `a 2-D relative position bias table of ${len} rows is not square`);
    resized = planes.map((p) => resizeGrid(p, [s1, s1], [2 * wh - 1, 2 * ww - 1], { mode: 'bicubic' }));
  }
  const reps = 2 * wd - 1;
  const tiled = resized.map((p) => {
    const out = new Float64Array(reps * l2);
    for (let r = 0; r < reps; r++) out.set(Float64Array.from(p), r * l2);
    return out;
  });
  return planesToTable(tiled, reps * l2);
}

/**
 * Resize a 3-D bias table `[(2D1-1)(2H1-1)(2W1-1), heads]` of window `from` to window `to` by
 * trilinear interpolation (align_corners False), as the SSv2 loader does for (8,7,7) -> (16,7,7).
 */
export function resizeBiasTable3d(table: tf.Tensor, from: Triple, to: Triple): tf.Tensor2D {
  const src = from.map((v) => 2 * v - 1) as Triple;
  const dst = to.map((v) => 2 * v - 1) as Triple;
  const { planes, len } = tableToPlanes(table);
  check(
    len === src[0] * src[1] * src[2],
    () => `relative position bias table has ${len} rows, expected ${src.join('x')} for the window ${from.join('x')}`,
  );
  const rw = [0, 1, 2].map((a) => resizeWeights(src[a], dst[a], { mode: 'linear' }));
  const out = planes.map((p) => {
    // resize axis by axis: (d, h, w) row-major
    let cur: Float64Array = p;
    let shape = src.slice();
    for (let a = 0; a < 3; a++) {
      const next = shape.slice();
      next[a] = dst[a];
      const res = new Float64Array(next[0] * next[1] * next[2]);
      const inner = shape.slice(a + 1).reduce((x, y) => x * y, 1);
      const outer = shape.slice(0, a).reduce((x, y) => x * y, 1);
      for (let o = 0; o < outer; o++) {
        for (let j = 0; j < dst[a]; j++) {
          for (let i = 0; i < shape[a]; i++) {
            const wgt = rw[a][j * shape[a] + i];
            if (wgt === 0) continue;
            for (let k = 0; k < inner; k++) res[(o * dst[a] + j) * inner + k] += wgt * cur[(o * shape[a] + i) * inner + k];
          }
        }
      }
      cur = res;
      shape = next;
    }
    return cur;
  });
  return planesToTable(out, dst[0] * dst[1] * dst[2]);
}
