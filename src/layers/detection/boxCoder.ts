import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { checkBoxes } from './util.js';

/** Options of {@link boxCoder}. */
export interface BoxCoderOptions {
  /** `(wx, wy, ww, wh)`: RetinaNet and RPN `(1, 1, 1, 1)`, Fast R-CNN heads `(10, 10, 5, 5)`. */
  weights: [number, number, number, number];
  /** Upper clamp of the decoded `dw`, `dh` (default `log(1000 / 16)`). */
  bboxXformClip?: number;
}

/**
 * The R-CNN box parametrisation (Girshick et al. 2014, appendix C; torchvision `BoxCoder`):
 * `dx = wx (gx - px) / pw`, `dw = ww log(gw / pw)` with centres `x1 + 0.5 w` and sizes `x2 - x1`.
 */
export class BoxCoder {
  readonly weights: [number, number, number, number];
  readonly bboxXformClip: number;
  constructor(opts: BoxCoderOptions) {
    check(
      Array.isArray(opts?.weights) && opts.weights.length === 4,
      () => `boxCoder: weights must be [wx, wy, ww, wh], got ${JSON.stringify(opts?.weights)}`,
    );
    this.weights = [...opts.weights];
    this.bboxXformClip = opts.bboxXformClip ?? Math.log(1000 / 16);
  }

  /** Regression targets of `reference` (gt) boxes relative to `proposals` (torchvision `encode_single`). */
  encode(reference: tf.Tensor2D, proposals: tf.Tensor2D): tf.Tensor2D {
    checkBoxes(reference, 'boxCoder.encode: reference');
    checkBoxes(proposals, 'boxCoder.encode: proposals');
    check(
      reference.shape[0] === proposals.shape[0],
      () => `boxCoder.encode: ${reference.shape[0]} reference boxes vs ${proposals.shape[0]} proposals`,
    );
    const [wx, wy, ww, wh] = this.weights;
    return tf.tidy(() => {
      const [px1, py1, px2, py2] = tf.unstack(proposals, 1);
      const [gx1, gy1, gx2, gy2] = tf.unstack(reference, 1);
      const pw = tf.sub(px2, px1);
      const ph = tf.sub(py2, py1);
      const pcx = tf.add(px1, tf.mul(0.5, pw));
      const pcy = tf.add(py1, tf.mul(0.5, ph));
      const gw = tf.sub(gx2, gx1);
      const gh = tf.sub(gy2, gy1);
      const gcx = tf.add(gx1, tf.mul(0.5, gw));
      const gcy = tf.add(gy1, tf.mul(0.5, gh));
      const dx = tf.div(tf.mul(wx, tf.sub(gcx, pcx)), pw);
      const dy = tf.div(tf.mul(wy, tf.sub(gcy, pcy)), ph);
      const dw = tf.mul(ww, tf.log(tf.div(gw, pw)));
      const dh = tf.mul(wh, tf.log(tf.div(gh, ph)));
      return tf.stack([dx, dy, dw, dh], 1) as tf.Tensor2D;
    });
  }

  /**
   * Boxes from deltas `[N, 4k]` relative to `boxes` `[N, 4]` (torchvision `decode_single`): each group of
   * 4 is one box; `dw`, `dh` are clamped from above at `bboxXformClip`. Differentiable in `relCodes`.
   */
  decode(relCodes: tf.Tensor2D, boxes: tf.Tensor2D): tf.Tensor2D {
    checkBoxes(boxes, 'boxCoder.decode: boxes');
    check(
      relCodes.rank === 2 && relCodes.shape[1] % 4 === 0 && relCodes.shape[0] === boxes.shape[0],
      () => `boxCoder.decode: relCodes must have shape [${boxes.shape[0]}, 4k], got [${relCodes.shape.join(', ')}]`,
    );
    const [wx, wy, ww, wh] = this.weights;
    const [n, c] = relCodes.shape;
    const k = c / 4;
    return tf.tidy(() => {
      const [x1, y1, x2, y2] = tf.unstack(boxes, 1);
      const widths = tf.sub(x2, x1);
      const heights = tf.sub(y2, y1);
      const cx = tf.expandDims(tf.add(x1, tf.mul(0.5, widths)), 1);
      const cy = tf.expandDims(tf.add(y1, tf.mul(0.5, heights)), 1);
      const w = tf.expandDims(widths, 1);
      const h = tf.expandDims(heights, 1);
      const r = tf.reshape(relCodes, [n, k, 4]);
      const [rx, ry, rw, rh] = tf.unstack(r, 2);
      const dx = tf.div(rx, wx);
      const dy = tf.div(ry, wy);
      const dw = tf.minimum(tf.div(rw, ww), this.bboxXformClip);
      const dh = tf.minimum(tf.div(rh, wh), this.bboxXformClip);
      const pcx = tf.add(tf.mul(dx, w), cx);
      const pcy = tf.add(tf.mul(dy, h), cy);
      const hw = tf.mul(0.5, tf.mul(tf.exp(dw), w));
      const hh = tf.mul(0.5, tf.mul(tf.exp(dh), h));
      return tf.reshape(tf.stack([tf.sub(pcx, hw), tf.sub(pcy, hh), tf.add(pcx, hw), tf.add(pcy, hh)], 2), [n, c]) as tf.Tensor2D;
    });
  }
}

/** Build a {@link BoxCoder}. */
export function boxCoder(opts: BoxCoderOptions): BoxCoder {
  return new BoxCoder(opts);
}

/** Options of {@link boxLinearCoder}. */
export interface BoxLinearCoderOptions {
  /** Divide the distances by the reference box's width / height (default true, as FCOS). */
  normalizeBySize?: boolean;
}

/**
 * FCOS's `(l, t, r, b)` distances from the reference box centre to the sides of the target box
 * (Tian et al. 2019, eq. 1; torchvision `BoxLinearCoder`), optionally normalised by the reference size.
 */
export class BoxLinearCoder {
  readonly normalizeBySize: boolean;
  constructor(opts: BoxLinearCoderOptions = {}) {
    this.normalizeBySize = opts.normalizeBySize ?? true;
  }

  /** `(l, t, r, b)` of `proposals` around the centres of `reference` (torchvision `encode_single`). */
  encode(reference: tf.Tensor2D, proposals: tf.Tensor2D): tf.Tensor2D {
    checkBoxes(reference, 'boxLinearCoder.encode: reference');
    checkBoxes(proposals, 'boxLinearCoder.encode: proposals');
    check(
      reference.shape[0] === proposals.shape[0],
      () => `boxLinearCoder.encode: ${reference.shape[0]} reference boxes vs ${proposals.shape[0]} proposals`,
    );
    return tf.tidy(() => {
      const [rx1, ry1, rx2, ry2] = tf.unstack(reference, 1);
      const [px1, py1, px2, py2] = tf.unstack(proposals, 1);
      const cx = tf.mul(0.5, tf.add(rx1, rx2));
      const cy = tf.mul(0.5, tf.add(ry1, ry2));
      let t = tf.stack([tf.sub(cx, px1), tf.sub(cy, py1), tf.sub(px2, cx), tf.sub(py2, cy)], 1);
      if (this.normalizeBySize) {
        const w = tf.sub(rx2, rx1);
        const h = tf.sub(ry2, ry1);
        t = tf.div(t, tf.stack([w, h, w, h], 1));
      }
      return t as tf.Tensor2D;
    });
  }

  /** Boxes from `(l, t, r, b)` codes around the centres of `boxes` (torchvision `decode_single`). Differentiable. */
  decode(relCodes: tf.Tensor2D, boxes: tf.Tensor2D): tf.Tensor2D {
    checkBoxes(boxes, 'boxLinearCoder.decode: boxes');
    checkBoxes(relCodes, 'boxLinearCoder.decode: relCodes');
    check(relCodes.shape[0] === boxes.shape[0], () => `boxLinearCoder.decode: ${relCodes.shape[0]} codes vs ${boxes.shape[0]} boxes`);
    return tf.tidy(() => {
      const [x1, y1, x2, y2] = tf.unstack(boxes, 1);
      const cx = tf.mul(0.5, tf.add(x1, x2));
      const cy = tf.mul(0.5, tf.add(y1, y2));
      let r = relCodes as tf.Tensor;
      if (this.normalizeBySize) {
        const w = tf.sub(x2, x1);
        const h = tf.sub(y2, y1);
        r = tf.mul(r, tf.stack([w, h, w, h], 1));
      }
      const [l, t, rr, b] = tf.unstack(r, 1);
      return tf.stack([tf.sub(cx, l), tf.sub(cy, t), tf.add(cx, rr), tf.add(cy, b)], 1) as tf.Tensor2D;
    });
  }
}

/** Build a {@link BoxLinearCoder}. */
export function boxLinearCoder(opts: BoxLinearCoderOptions = {}): BoxLinearCoder {
  return new BoxLinearCoder(opts);
}
