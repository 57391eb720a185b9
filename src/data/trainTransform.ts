import * as tf from '@tensorflow/tfjs';
import type { DataConfig } from './dataConfig.js';
import { DataRng } from './rng.js';
import { ImageTransform, tensorToU8 } from './tensorImage.js';
import { applyTrainDraws, drawTrainParams, resolveTrainSettings, TrainTransformOptions } from './trainParams.js';

export { randomResizedCropParams } from './trainParams.js';
export type { TrainTransformOptions };

/**
 * timm's `transforms_imagenet_train`: RandomResizedCrop (area `scale`, log-uniform aspect `ratio`, 10
 * tries then a centred crop; Pillow resize with `interpolation`), horizontal flip, then RandAugment
 * (`autoAugment`) or colour jitter, `x / 255`, normalise, random erasing. Seeded: the same seed gives
 * the same sequence of outputs.
 */
export function createTrainTransform(cfg: DataConfig, opts: TrainTransformOptions): ImageTransform {
  const s = resolveTrainSettings(cfg, opts);
  const { height: th, width: tw } = s;
  const rng = new DataRng(opts.seed);
  return (image: tf.Tensor3D) => {
    const src = tensorToU8(image, 'train transform');
    const out = applyTrainDraws(src, drawTrainParams(src.height, src.width, s, rng), s, cfg);
    if (out instanceof Uint8Array) return tf.tensor3d(Int32Array.from(out), [th, tw, 3], 'int32');
    return tf.tensor3d(out, [th, tw, 3], 'float32');
  };
}
