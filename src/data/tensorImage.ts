import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { U8Image } from './imageOps.js';

/** An image transform: `[H, W, 3]` 0..255 in, a new `[h, w, 3]` tensor out (the caller disposes it). */
export type ImageTransform = (image: tf.Tensor3D) => tf.Tensor3D;

/**
 * An `[H, W, 3]` image tensor with integer values 0..255 (int32 as `readImage` gives, or float32
 * holding integers) as a uint8 image; anything else is an error.
 */
export function tensorToU8(image: tf.Tensor, who = 'transform'): U8Image {
  check(image instanceof tf.Tensor, () => `${who}: expected an image tensor [H, W, 3], got ${typeof image}`);
  check(
    image.rank === 3 && image.shape[2] === 3,
    () => `${who}: expected an image [H, W, 3] (HWC, RGB; readImage gives one), got shape [${image.shape.join(', ')}]`,
  );
  const [h, w] = image.shape;
  check(h > 0 && w > 0, () => `${who}: empty image [${image.shape.join(', ')}]`);
  const v = image.dataSync();
  const data = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!(x >= 0 && x <= 255 && x === Math.floor(x))) {
      throw new VisBackbonesError(
        `${who}: image values must be integers 0..255 (an undecoded / unnormalised RGB image), found ${x} at index ${i}`,
      );
    }
    data[i] = x;
  }
  return { data, height: h, width: w, channels: 3 };
}
