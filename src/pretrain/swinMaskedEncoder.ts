import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ForwardOptions } from '../layers/module.js';
import { SwinTransformer } from '../models/swin/swinTransformer.js';
import { MaskedEncoder } from './maskedEncoder.js';
import { SwinEncoder } from './swinEncoder.js';

/** A {@link MaskedEncoder} over a Swin / SwinV2 backbone (SimMIM's `SwinTransformerForSimMIM`). */
export function swinMaskedEncoder(model: SwinTransformer): MaskedEncoder {
  const enc = new SwinEncoder(model);
  return {
    module: model,
    patchSize: enc.patchSize,
    stride: enc.stride,
    embedDim: model.dims[0],
    numFeatures: model.numFeatures,
    inChans: model.inChans,
    checkInput(x: tf.Tensor) {
      check(x.rank === 4, () => `expected an NHWC image batch [B, H, W, ${model.inChans}], got shape [${x.shape.join(', ')}]`);
      enc.stageGrids(x.shape[1] as number, x.shape[2] as number);
    },
    encode(x: tf.Tensor, edit, opts: ForwardOptions = {}) {
      return enc.forward(x, { ...opts, embedHook: edit ?? undefined });
    },
    dispose() {
      enc.dispose();
    },
  };
}
