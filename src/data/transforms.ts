import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import type { DataConfig } from './dataConfig.js';
import { evalResizeCrop } from './evalTransform.js';
import { normalizeU8 } from './imageOps.js';
import { ImageTransform, tensorToU8 } from './tensorImage.js';
import { BatchImageTransform, BatchTrainTransformOptions, createBatchTrainTransform } from './batchTransform.js';
import { createTrainTransform, TrainTransformOptions } from './trainTransform.js';

/** Options of the eval transform. */
export interface EvalTransformOptions {
  isTraining?: false;
  /** false: return the uint8-valued crop as int32 (timm's `normalize=False`). Default true. */
  normalize?: boolean;
}

export { tensorToU8 };
export type { ImageTransform };

/**
 * timm's `create_transform`: with `isTraining` false (default) the eval transform of `dataConfig`,
 * bit for bit: Pillow's antialiased resize on uint8 (horizontal then vertical pass, fixed point),
 * centre crop with half-to-even offsets (`squash` / `border` as timm), then `x / 255` and
 * `(x - mean) / std` in float32. Returns NHWC `[h, w, 3]` float32 (int32 0..255 with `normalize: false`).
 * With `isTraining: true` the random training transform (see {@link TrainTransformOptions}); with
 * `batched: true` as well, the same transform of a whole `[B, H, W, 3]` batch on the active backend
 * (see {@link createBatchTrainTransform}: the same seed gives the same outputs).
 */
export function createTransform(dataConfig: DataConfig, opts?: EvalTransformOptions): ImageTransform;
export function createTransform(dataConfig: DataConfig, opts: BatchTrainTransformOptions): BatchImageTransform;
export function createTransform(dataConfig: DataConfig, opts: TrainTransformOptions & { isTraining: true }): ImageTransform;
export function createTransform(
  dataConfig: DataConfig,
  opts: EvalTransformOptions | (TrainTransformOptions & { isTraining: true; batched?: boolean }) = {},
): ImageTransform | BatchImageTransform {
  check(
    dataConfig && Array.isArray(dataConfig.inputSize),
    () => 'createTransform: expected a DataConfig (resolveDataConfig(model) gives one)',
  );
  if (opts.isTraining && opts.batched) return createBatchTrainTransform(dataConfig, opts);
  if (opts.isTraining) return createTrainTransform(dataConfig, opts as TrainTransformOptions);
  const normalize = (opts as EvalTransformOptions).normalize ?? true;
  return (image: tf.Tensor3D) => {
    const crop = evalResizeCrop(tensorToU8(image, 'eval transform'), dataConfig);
    if (!normalize) return tf.tensor3d(Int32Array.from(crop.data), [crop.height, crop.width, 3], 'int32');
    return tf.tensor3d(normalizeU8(crop, dataConfig.mean, dataConfig.std), [crop.height, crop.width, 3], 'float32');
  };
}
