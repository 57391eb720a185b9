import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { DataConfig } from './dataConfig.js';
import { evalResizeCrop } from './evalTransform.js';
import { normalizeU8, U8Image } from './imageOps.js';
import { createTrainTransform, TrainTransformOptions } from './trainTransform.js';

/** Options of the eval transform. */
export interface EvalTransformOptions {
  isTraining?: false;
  /** false: return the uint8-valued crop as int32 (timm's `normalize=False`). Default true. */
  normalize?: boolean;
}

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

/**
 * timm's `create_transform`: with `isTraining` false (default) the eval transform of `dataConfig`,
 * bit for bit: Pillow's antialiased resize on uint8 (horizontal then vertical pass, fixed point),
 * centre crop with half-to-even offsets (`squash` / `border` as timm), then `x / 255` and
 * `(x - mean) / std` in float32. Returns NHWC `[h, w, 3]` float32 (int32 0..255 with `normalize: false`).
 * With `isTraining: true` the random training transform (see {@link TrainTransformOptions}).
 */
export function createTransform(dataConfig: DataConfig, opts?: EvalTransformOptions): ImageTransform;
export function createTransform(dataConfig: DataConfig, opts: TrainTransformOptions & { isTraining: true }): ImageTransform;
export function createTransform(
  dataConfig: DataConfig,
  opts: EvalTransformOptions | (TrainTransformOptions & { isTraining: true }) = {},
): ImageTransform {
  check(
    dataConfig && Array.isArray(dataConfig.inputSize),
    () => 'createTransform: expected a DataConfig (resolveDataConfig(model) gives one)',
  );
  if (opts.isTraining) return createTrainTransform(dataConfig, opts as TrainTransformOptions);
  const normalize = (opts as EvalTransformOptions).normalize ?? true;
  return (image: tf.Tensor3D) => {
    const crop = evalResizeCrop(tensorToU8(image, 'eval transform'), dataConfig);
    if (!normalize) return tf.tensor3d(Int32Array.from(crop.data), [crop.height, crop.width, 3], 'int32');
    return tf.tensor3d(normalizeU8(crop, dataConfig.mean, dataConfig.std), [crop.height, crop.width, 3], 'float32');
  };
}
