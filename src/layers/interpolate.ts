import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/**
 * Resizing as PyTorch's `F.interpolate` computes it, written as separable resize matrices: each axis
 * is resized by an `[out, in]` weight matrix, so resizing a tensor is two 2-D matmuls (differentiable on
 * every backend, and TF.js has no bicubic resize of its own).
 *
 * Kernels (PyTorch `aten/src/ATen/native/UpSample.h` and `cpu/UpSampleKernel.cpp`):
 * - `nearest`: source index `min(floor(o * in / out), in - 1)` (the legacy 'nearest', not 'nearest-exact').
 * - `linear` / `bilinear`: source coordinate `max((o + 0.5) * in / out - 0.5, 0)`, two taps, the second
 *   clamped to the border.
 * - `bicubic`: Keys' cubic convolution with `A = -0.75` at `(o + 0.5) * in / out - 0.5`, four taps
 *   clamped to the border (border weights accumulate).
 * - `antialias: true` (bilinear / bicubic, PyTorch's separate anti-aliasing path, as Pillow): the
 *   triangle or Keys `a = -0.5` filter centred at `(o + 0.5) * in / out`, its support stretched by the
 *   scale factor when downsampling, taps cut at the border and the weights renormalised to sum 1. Used
 *   whenever `antialias` is set, also when upsampling (then the support is not stretched).
 */

/** Interpolation modes of {@link resizeWeights} (PyTorch's `mode`). */
export type InterpolationMode = 'nearest' | 'linear' | 'bilinear' | 'bicubic';

/** Options of the resize functions (PyTorch's `F.interpolate` arguments). */
export interface ResizeOptions {
  /** Default 'bicubic'. 'linear' and 'bilinear' are the same per-axis kernel. */
  mode?: InterpolationMode;
  /** PyTorch's anti-aliasing path (bilinear / bicubic only). Default false. */
  antialias?: boolean;
  /** PyTorch's `align_corners` (linear / bilinear / bicubic only). Default false. */
  alignCorners?: boolean;
}

/** Keys' cubic convolution for `|x| <= 1` (PyTorch's `cubic_convolution1`). */
function cubic1(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}

/** Keys' cubic convolution for `1 < |x| < 2` (PyTorch's `cubic_convolution2`). */
function cubic2(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/** PyTorch's `area_pixel_compute_scale` for an output size (no explicit scale factor). */
function pixelScale(inSize: number, outSize: number, alignCorners: boolean): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return inSize / outSize;
}

function checkSizes(inSize: number, outSize: number): void {
  check(Number.isInteger(inSize) && inSize > 0, () => `resize: input size must be a positive integer, got ${inSize}`);
  check(Number.isInteger(outSize) && outSize > 0, () => `resize: output size must be a positive integer, got ${outSize}`);
}

/**
 * The `[outSize, inSize]` weight matrix (row-major, float64) that resizes one axis exactly as PyTorch's
 * `F.interpolate(size=...)` does along that axis: `y[o] = sum_i W[o, i] x[i]`.
 */
export function resizeWeights(inSize: number, outSize: number, opts: ResizeOptions = {}): Float64Array {
  checkSizes(inSize, outSize);
  const mode = opts.mode ?? 'bicubic';
  const aa = opts.antialias ?? false;
  const ac = opts.alignCorners ?? false;
  check(
    ['nearest', 'linear', 'bilinear', 'bicubic'].includes(mode),
    () => `resize: unknown mode '${mode}', expected nearest, linear, bilinear or bicubic`,
  );
  check(
    !(aa && (mode === 'nearest' || mode === 'linear')),
    () => `resize: antialias is supported for bilinear and bicubic only (as in PyTorch), got mode '${mode}'`,
  );
  check(!(ac && mode === 'nearest'), () => "resize: alignCorners is not defined for mode 'nearest' (as in PyTorch)");
  const w = new Float64Array(outSize * inSize);
  if (mode === 'nearest') {
    // PyTorch computes the index in float32: floor(o * scale) with scale = float(in / out)
    const scale = Math.fround(inSize / outSize);
    for (let o = 0; o < outSize; o++) {
      const i = Math.min(Math.floor(Math.fround(o * scale)), inSize - 1);
      w[o * inSize + i] = 1;
    }
    return w;
  }
  const cubic = mode === 'bicubic';
  const scale = pixelScale(inSize, outSize, ac);
  if (aa) {
    const interp = cubic ? 4 : 2;
    const support = scale >= 1 ? (interp / 2) * scale : interp / 2;
    const maxTaps = Math.ceil(support) * 2 + 1;
    const inv = scale >= 1 ? 1 / scale : 1;
    const filter = cubic
      ? (x: number) => {
          const t = Math.abs(x);
          return t < 1 ? cubic1(t, -0.5) : t < 2 ? cubic2(t, -0.5) : 0;
        }
      : (x: number) => Math.max(0, 1 - Math.abs(x));
    for (let o = 0; o < outSize; o++) {
      const center = scale * (o + 0.5);
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), maxTaps);
      let total = 0;
      const taps: number[] = [];
      for (let j = 0; j < xsize; j++) {
        const v = filter((j + xmin - center + 0.5) * inv);
        taps.push(v);
        total += v;
      }
      if (total !== 0) for (let j = 0; j < xsize; j++) w[o * inSize + xmin + j] = taps[j] / total;
    }
    return w;
  }
  for (let o = 0; o < outSize; o++) {
    if (cubic) {
      const real = ac ? scale * o : scale * (o + 0.5) - 0.5;
      const idx = Math.min(Math.floor(real), inSize - 1);
      const t = Math.min(Math.max(real - idx, 0), 1);
      const A = -0.75;
      const coeffs = [cubic2(t + 1, A), cubic1(t, A), cubic1(1 - t, A), cubic2(2 - t, A)];
      for (let j = 0; j < 4; j++) {
        const i = Math.max(Math.min(idx - 1 + j, inSize - 1), 0);
        w[o * inSize + i] += coeffs[j];
      }
    } else {
      const real = ac ? scale * o : Math.max(scale * (o + 0.5) - 0.5, 0);
      const i0 = Math.min(Math.floor(real), inSize - 1);
      const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
      const l1 = Math.min(Math.max(real - i0, 0), 1);
      w[o * inSize + i0] += 1 - l1;
      w[o * inSize + i1] += l1;
    }
  }
  return w;
}

/**
 * The `[oh * ow, h * w]` matrix that resizes a row-major `h x w` grid to `oh x ow` (the Kronecker
 * product of the two axes' {@link resizeWeights}, since PyTorch's 2-D kernels are separable).
 */
export function resizeMatrix2d(inSize: [number, number], outSize: [number, number], opts: ResizeOptions = {}): Float64Array {
  const [h, w] = inSize;
  const [oh, ow] = outSize;
  const rh = resizeWeights(h, oh, opts);
  const rw = resizeWeights(w, ow, opts);
  const m = new Float64Array(oh * ow * h * w);
  for (let a = 0; a < oh; a++) {
    for (let b = 0; b < ow; b++) {
      const row = (a * ow + b) * h * w;
      for (let i = 0; i < h; i++) {
        const wh = rh[a * h + i];
        if (wh === 0) continue;
        for (let j = 0; j < w; j++) m[row + i * w + j] = wh * rw[b * w + j];
      }
    }
  }
  return m;
}

/**
 * Resize a plain row-major 2-D grid of numbers `h x w` to `oh x ow` in JavaScript (float64), as
 * `F.interpolate` does on a `(1, 1, h, w)` tensor.
 */
export function resizeGrid(
  values: ArrayLike<number>,
  inSize: [number, number],
  outSize: [number, number],
  opts: ResizeOptions = {},
): Float64Array {
  const [h, w] = inSize;
  const [oh, ow] = outSize;
  check(values.length === h * w, () => `resizeGrid: expected ${h}x${w} = ${h * w} values, got ${values.length}`);
  const rh = resizeWeights(h, oh, opts);
  const rw = resizeWeights(w, ow, opts);
  // width pass first (as PyTorch's separable anti-aliasing kernel), then height
  const tmp = new Float64Array(h * ow);
  for (let i = 0; i < h; i++) {
    for (let b = 0; b < ow; b++) {
      let s = 0;
      for (let j = 0; j < w; j++) s += rw[b * w + j] * values[i * w + j];
      tmp[i * ow + b] = s;
    }
  }
  const out = new Float64Array(oh * ow);
  for (let a = 0; a < oh; a++) {
    for (let b = 0; b < ow; b++) {
      let s = 0;
      for (let i = 0; i < h; i++) s += rh[a * h + i] * tmp[i * ow + b];
      out[a * ow + b] = s;
    }
  }
  return out;
}

/** {@link resizeWeights} as a float32 `[out, in]` tensor. */
export function resizeWeightsTensor(inSize: number, outSize: number, opts: ResizeOptions = {}): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from(resizeWeights(inSize, outSize, opts)), [outSize, inSize]);
}

/**
 * `F.interpolate(x, size=[oh, ow], mode, antialias, align_corners)` on an NHWC tensor
 * `[B, H, W, C]` -> `[B, oh, ow, C]`. Two 2-D matmuls with the axes' resize matrices, so gradients flow
 * to `x` on every backend. An axis whose size does not change is left untouched (every PyTorch kernel
 * is the identity there).
 */
export function interpolateNhwc(x: tf.Tensor, outSize: [number, number], opts: ResizeOptions = {}): tf.Tensor4D {
  check(x.rank === 4, () => `interpolateNhwc expects NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`);
  const [b, h, w, c] = x.shape;
  const [oh, ow] = outSize;
  checkSizes(h, oh);
  checkSizes(w, ow);
  return tf.tidy(() => {
    let y = x as tf.Tensor4D;
    if (oh !== h) {
      const rh = resizeWeightsTensor(h, oh, opts);
      const yh = tf.matMul(rh, y.transpose([1, 0, 2, 3]).reshape([h, b * w * c]));
      y = yh.reshape([oh, b, w, c]).transpose([1, 0, 2, 3]);
    }
    if (ow !== w) {
      const rw = resizeWeightsTensor(w, ow, opts);
      const yw = tf.matMul(rw, y.transpose([2, 0, 1, 3]).reshape([w, b * oh * c]));
      y = yw.reshape([ow, b, oh, c]).transpose([1, 2, 0, 3]);
    }
    return y === x ? (x.clone() as tf.Tensor4D) : y;
  });
}

/**
 * `F.interpolate(x, size=out, mode='linear')` along the first axis of a `[L, C]` tensor (PyTorch
 * resizes the last axis of `(1, C, L)`), returning `[out, C]`. Differentiable (one matmul).
 */
export function interpolateRows(x: tf.Tensor, outSize: number, opts: ResizeOptions = {}): tf.Tensor2D {
  check(x.rank === 2, () => `interpolateRows expects a [L, C] tensor, got shape [${x.shape.join(', ')}]`);
  const [l] = x.shape;
  checkSizes(l, outSize);
  return tf.tidy(() =>
    l === outSize ? (x.clone() as tf.Tensor2D) : tf.matMul(resizeWeightsTensor(l, outSize, { mode: 'linear', ...opts }), x as tf.Tensor2D),
  );
}
