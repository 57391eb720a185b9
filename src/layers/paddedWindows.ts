import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { windowPartition, windowReverse } from './windows.js';

/**
 * Non-overlapping windows over a map whose size need not be a multiple of the window (ViTDet, Li et al.
 * 2022, sec. 3 "window attention"; SAM's `window_partition` / `window_unpartition`): the map is padded
 * with zeros at the bottom and right to the next multiple, split, and cropped again afterwards.
 */

/** Padded size of one axis: the next multiple of `window`. */
export function paddedSize(size: number, window: number): number {
  return size + ((window - (size % window)) % window);
}

/**
 * `[B, H, W, C]` -> windows `[B * nW, ws, ws, C]` (row-major over windows) after zero-padding H and W up to
 * multiples of `ws`; also returns the padded size `[Hp, Wp]`.
 */
export function windowPartitionPadded(x: tf.Tensor, ws: number): { windows: tf.Tensor4D; padded: [number, number] } {
  check(x.rank === 4, () => `windowPartitionPadded expects NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`);
  check(Number.isInteger(ws) && ws > 0, () => `window size must be a positive integer, got ${ws}`);
  const [, h, w, c] = x.shape;
  const hp = paddedSize(h, ws);
  const wp = paddedSize(w, ws);
  const windows = tf.tidy(() => {
    const xp =
      hp !== h || wp !== w
        ? tf.pad(x, [
            [0, 0],
            [0, hp - h],
            [0, wp - w],
            [0, 0],
          ])
        : x;
    return windowPartition(xp, ws, ws).reshape([-1, ws, ws, c]) as tf.Tensor4D;
  });
  return { windows, padded: [hp, wp] };
}

/** Inverse of {@link windowPartitionPadded}: windows `[B * nW, ws, ws, C]` -> `[B, H, W, C]` (padding cropped). */
export function windowUnpartitionPadded(windows: tf.Tensor, ws: number, size: [number, number], padded: [number, number]): tf.Tensor4D {
  const [h, w] = size;
  const [hp, wp] = padded;
  return tf.tidy(() => {
    const c = windows.shape[windows.rank - 1];
    const x = windowReverse(windows.reshape([-1, ws * ws, c]), ws, ws, hp, wp);
    return (hp !== h || wp !== w ? x.slice([0, 0, 0, 0], [-1, h, w, -1]) : x) as tf.Tensor4D;
  });
}
