import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { DataConfig } from './dataConfig.js';
import { pilResizeCoeffs, PilResizeCoeffs } from './pilResize.js';
import { DataRng } from './rng.js';
import {
  applyEraseBoxes,
  applyTrainDraws,
  drawTrainParams,
  resolveTrainSettings,
  TrainDraws,
  TrainSettings,
  TrainTransformOptions,
} from './trainParams.js';

/** Options of the batched training transform: the training transform's, plus `batched: true`. */
export interface BatchTrainTransformOptions extends TrainTransformOptions {
  batched: true;
}

/**
 * A transform of a whole batch: images `[B, H, W, 3]` (values 0..255: int32, or float32 holding integers)
 * -> a new `[B, h, w, 3]` tensor (the caller disposes it). For a padded batch of images of different
 * sizes, `sizes[i]` is the `[height, width]` of image `i`, in its top-left corner (default: all `[H, W]`).
 */
export interface BatchImageTransform {
  (images: tf.Tensor4D, sizes?: ReadonlyArray<readonly [number, number]>): tf.Tensor4D;
  /** Marks a batched transform (what {@link imageLoader} looks for). */
  readonly batched: true;
}

/** Pillow's weights are 22-bit fixed point; each is split as `hi * 2^8 + lo` so that every sum stays an exact float32 integer. */
const LO_BITS = 8;
/** Taps summed before the low accumulator's carry moves to the high one (`CARRY_EVERY * 255 * 255 < 2^22`). */
const CARRY_EVERY = 64;

/** One resampling pass of a batch: per tap `k`, the source row (`b * inRows + index`) and the weight halves of each output row (`[k][b * size + i]`). */
interface PassTaps {
  taps: number;
  size: number;
  index: Int32Array;
  hi: Float32Array;
  lo: Float32Array;
}

/**
 * The taps of Pillow's resize from `[start, start + inSize)` to `size` for each image of a batch whose
 * images hold `inRows` rows each (zero-weight taps pad the narrower kernels); `reverse` lists an image's
 * outputs last to first (a horizontal flip of the result).
 */
function passTaps(
  size: number,
  inRows: number,
  plans: { start: number; inSize: number; filter: 'bilinear' | 'bicubic'; reverse: boolean }[],
): PassTaps {
  const cache = new Map<string, PilResizeCoeffs>();
  const coeffs = plans.map(({ inSize, filter }) => {
    const key = `${inSize}/${filter}`;
    if (!cache.has(key)) cache.set(key, pilResizeCoeffs(inSize, size, filter));
    return cache.get(key)!;
  });
  let taps = 1;
  for (const c of coeffs) for (let i = 0; i < size; i++) taps = Math.max(taps, c.bounds[2 * i + 1]);
  const n = plans.length * size;
  const index = new Int32Array(taps * n);
  const hi = new Float32Array(taps * n);
  const lo = new Float32Array(taps * n);
  plans.forEach(({ start, reverse }, b) => {
    const { bounds, ksize, kk } = coeffs[b];
    const base = b * inRows + start;
    for (let i = 0; i < size; i++) {
      const first = base + bounds[2 * i];
      const count = bounds[2 * i + 1];
      const at = b * size + (reverse ? size - 1 - i : i);
      for (let k = 0; k < taps; k++) {
        const w = k < count ? kk[i * ksize + k] : 0;
        const h = Math.floor(w / 2 ** LO_BITS);
        index[k * n + at] = k < count ? first + k : base;
        hi[k * n + at] = h;
        lo[k * n + at] = w - h * 2 ** LO_BITS;
      }
    }
  });
  return { taps, size, index, hi, lo };
}

/**
 * One pass of Pillow's 8-bit resampler over the rows of `x` (`[B * inRows, M]`, uint8-valued float32):
 * `[B * size, M]` = `clip8((2^21 + sum(src * kk)) >> 22)`, bit for bit. With the weights split in halves
 * (`kk = hi * 2^8 + lo`) and the low sum's carry moved up every {@link CARRY_EVERY} taps, both
 * accumulators hold integers below 2^24: exact in float32 on any backend, in any summation order.
 */
function resamplePass(x: tf.Tensor2D, t: PassTaps): tf.Tensor2D {
  const n = t.index.length / t.taps;
  let sh: tf.Tensor | null = null;
  let sl: tf.Tensor | null = null;
  for (let k = 0; k < t.taps; k++) {
    const [nh, nl] = tf.tidy(() => {
      const g = tf.gather(x, tf.tensor1d(t.index.subarray(k * n, (k + 1) * n), 'int32'));
      const hi = g.mul(tf.tensor2d(t.hi.subarray(k * n, (k + 1) * n), [n, 1]));
      const lo = g.mul(tf.tensor2d(t.lo.subarray(k * n, (k + 1) * n), [n, 1]));
      const h = sh ? sh.add(hi) : hi;
      const l = sl ? sl.add(lo) : lo;
      if ((k + 1) % CARRY_EVERY || k === t.taps - 1) return [h, l];
      // sh * 2^8 + sl is unchanged when whole multiples of 2^8 move from sl to sh
      const carry = l.mul(2 ** -LO_BITS).floor();
      return [h.add(carry), l.sub(carry.mul(2 ** LO_BITS))];
    });
    if (sh && sl) tf.dispose([sh, sl]);
    [sh, sl] = [nh, nl];
  }
  const [accHi, accLo] = [sh!, sl!];
  const out = tf.tidy(() => {
    const hiBits = 22 - LO_BITS;
    const q = accHi.mul(2 ** -hiBits).floor();
    const r = accHi.sub(q.mul(2 ** hiBits));
    const frac = r
      .mul(2 ** LO_BITS)
      .add(accLo)
      .add(2 ** 21)
      .mul(2 ** -22)
      .floor();
    return q.add(frac).clipByValue(0, 255) as tf.Tensor2D;
  });
  tf.dispose([accHi, accLo]);
  return out;
}

const BAD_VALUES = 'batched train transform: image values must be integers 0..255 (undecoded / unnormalised RGB images)';

/** On the backend: all values integers 0..255 (min, max and the sum of the fractional parts, NaN / inf making it NaN; one read-back). */
function checkValuesOnDevice(images: tf.Tensor4D): void {
  const [lo, hi, frac] = tf.tidy(() =>
    tf
      .stack([images.min().toFloat(), images.max().toFloat(), images.dtype === 'int32' ? tf.scalar(0) : images.sub(images.floor()).sum()])
      .dataSync(),
  );
  check(lo >= 0 && hi <= 255 && frac === 0, BAD_VALUES);
}

/** The batch's values as uint8 (read back once), checked. */
function batchToU8(images: tf.Tensor4D): Uint8Array {
  const v = images.dataSync();
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!(x >= 0 && x <= 255 && x === Math.floor(x))) throw new VisBackbonesError(`${BAD_VALUES}, found ${x} at index ${i}`);
    out[i] = x;
  }
  return out;
}

/** Which implementation a batched transform runs: JavaScript loops over the batch, tensor ops, or by backend. */
export type BatchTransformPath = 'auto' | 'js' | 'ops';
let path: BatchTransformPath = 'auto';

/**
 * Force one implementation of the batched training transform (tests and benches compare them; both give
 * the same outputs); returns the previous setting. `'auto'` (default): the JavaScript loops on the cpu
 * and wasm backends (where they are the faster), tensor ops elsewhere (webgl, webgpu).
 */
export function setBatchTransformPath(p: BatchTransformPath): BatchTransformPath {
  check(['auto', 'js', 'ops'].includes(p), () => `setBatchTransformPath: expected 'auto', 'js' or 'ops', got '${p}'`);
  const old = path;
  path = p;
  return old;
}

function usesJs(): boolean {
  if (path !== 'auto') return path === 'js';
  const b = tf.getBackend();
  return b === 'cpu' || b === 'wasm';
}

/** Check a batch of images and its sizes; `[h, w]` of each image. */
function checkBatch(images: tf.Tensor4D, sizes: ReadonlyArray<readonly [number, number]> | undefined): [number, number][] {
  const who = 'batched train transform';
  check(images instanceof tf.Tensor, () => `${who}: expected an image batch tensor [B, H, W, 3], got ${typeof images}`);
  check(
    images.rank === 4 && images.shape[3] === 3 && images.shape[0] > 0 && images.shape[1] > 0 && images.shape[2] > 0,
    () => `${who}: expected images [B, H, W, 3] (NHWC, RGB), got shape [${images.shape.join(', ')}]`,
  );
  check(images.dtype === 'int32' || images.dtype === 'float32', () => `${who}: expected int32 or float32 images, got ${images.dtype}`);
  const [b, h, w] = images.shape;
  const out = sizes ? sizes.map(([sh, sw]) => [sh, sw] as [number, number]) : Array.from({ length: b }, () => [h, w] as [number, number]);
  check(out.length === b, () => `${who}: ${out.length} sizes for a batch of ${b}`);
  out.forEach(([sh, sw], i) =>
    check(
      Number.isInteger(sh) && Number.isInteger(sw) && sh > 0 && sw > 0 && sh <= h && sw <= w,
      () => `${who}: size [${sh}, ${sw}] of image ${i} must be positive integers within the batch's ${h}x${w}`,
    ),
  );
  return out;
}

/** The batch through the per-image JavaScript transform (crops of the padded images: they lie inside each image). */
function transformOnHost(u8: Uint8Array, shape: number[], cfg: DataConfig, s: TrainSettings, draws: TrainDraws[]): tf.Tensor4D {
  const [b, h, w] = shape;
  const n = s.height * s.width * 3;
  const out = s.normalize ? new Float32Array(b * n) : new Int32Array(b * n);
  draws.forEach((d, i) => {
    const src = { data: u8.subarray(i * h * w * 3, (i + 1) * h * w * 3), height: h, width: w, channels: 3 };
    out.set(applyTrainDraws(src, d, s, cfg), i * n);
  });
  return tf.tensor4d(out, [b, s.height, s.width, 3], s.normalize ? 'float32' : 'int32');
}

/**
 * The training transform of {@link createTrainTransform} on a whole batch, on the active backend: the
 * random choices are drawn per image in the same order from the same seeded generator (so the same
 * seed gives the same outputs as the per-image transform fed the batch's images in order), then the
 * RandomResizedCrops run as two batched Pillow resampling passes (`tf.gather` of each tap, 22-bit
 * fixed-point weights, uint8 rounding after each pass: bit for bit Pillow's resize, bilinear and bicubic,
 * antialiased), the flips as reversed taps, normalisation and random erasing (`tf.where`) on the batch.
 * RandAugment and colour jitter are Pillow's uint8 ops: with either on, the resized crops go to the CPU
 * for them and back. On the cpu and wasm backends (see {@link setBatchTransformPath}) the batch is read
 * back once and runs through the per-image JavaScript loops instead, which are faster there.
 */
export function createBatchTrainTransform(cfg: DataConfig, opts: TrainTransformOptions): BatchImageTransform {
  const s = resolveTrainSettings(cfg, opts);
  const { height: th, width: tw } = s;
  const rng = new DataRng(opts.seed);
  const transform = (images: tf.Tensor4D, sizes?: ReadonlyArray<readonly [number, number]>): tf.Tensor4D => {
    const dims = checkBatch(images, sizes);
    if (usesJs()) {
      const u8 = batchToU8(images);
      return transformOnHost(
        u8,
        images.shape,
        cfg,
        s,
        dims.map(([h, w]) => drawTrainParams(h, w, s, rng)),
      );
    }
    checkValuesOnDevice(images);
    const draws: TrainDraws[] = dims.map(([h, w]) => drawTrainParams(h, w, s, rng));
    const b = draws.length;
    return tf.tidy(() => {
      // only the rows some crop reads
      const r0 = Math.min(...draws.map((d) => d.crop[0]));
      const r1 = Math.max(...draws.map((d) => d.crop[0] + d.crop[2]));
      const [, h, w] = images.shape;
      const rows = r1 - r0;
      const filter = (d: TrainDraws) => d.filter as 'bilinear' | 'bicubic';
      // horizontal pass over the columns (as rows of [B * W, rows * 3]), then the vertical one
      const wide = tf.tidy(() => {
        let src = images.toFloat() as tf.Tensor4D;
        if (r0 > 0 || r1 < h) src = src.slice([0, r0, 0, 0], [b, rows, w, 3]);
        const cols = src.transpose([0, 2, 1, 3]).reshape([b * w, rows * 3]) as tf.Tensor2D;
        const hTaps = passTaps(
          tw,
          w,
          draws.map((d) => ({ start: d.crop[1], inSize: d.crop[3], filter: filter(d), reverse: d.flip })),
        );
        return resamplePass(cols, hTaps)
          .reshape([b, tw, rows, 3])
          .transpose([0, 2, 1, 3])
          .reshape([b * rows, tw * 3]) as tf.Tensor2D;
      });
      const vTaps = passTaps(
        th,
        rows,
        draws.map((d) => ({ start: d.crop[0] - r0, inSize: d.crop[2], filter: filter(d), reverse: false })),
      );
      let x = resamplePass(wide, vTaps).reshape([b, th, tw, 3]) as tf.Tensor4D;
      if (s.policy || s.jitter > 0) {
        const u8 = Uint8Array.from(x.dataSync());
        const n = th * tw * 3;
        draws.forEach((d, i) => {
          const img = d.augment!({ data: u8.subarray(i * n, (i + 1) * n), height: th, width: tw, channels: 3 });
          u8.set(img.data, i * n);
        });
        x = tf.tensor4d(Float32Array.from(u8), [b, th, tw, 3]);
      }
      if (!s.normalize) return x.toInt();
      x = x.div(255).sub(tf.tensor1d(cfg.mean)).div(tf.tensor1d(cfg.std));
      if (draws.some((d) => d.erase.length)) {
        const fill = new Float32Array(b * th * tw * 3);
        const mask = new Uint8Array(fill.length);
        draws.forEach((d, i) => applyEraseBoxes(fill, i, th, tw, 3, d.erase, mask));
        x = tf.where(tf.tensor4d(mask, [b, th, tw, 3], 'bool'), tf.tensor4d(fill, [b, th, tw, 3]), x);
      }
      return x;
    });
  };
  return Object.assign(transform, { batched: true as const });
}
