import * as tf from '@tensorflow/tfjs';
import { ForwardOptions } from '../../layers/module.js';
import { resolveVideoSwinConfig, VideoSwinConfig } from './config.js';
import { VideoSwinTrunk } from './videoSwinTrunk.js';

/**
 * The Video Swin Transformer backbone (Liu et al. 2022, "Video Swin Transformer"; the official
 * `SwinTransformer3D`, BEVT's fine-tuning backbone): 3-D patch embedding, stages of 3-D shifted-window
 * attention with patch merging at their end, a final LayerNorm. NTHWC in and out:
 * `forward(x)` `[B, T, H, W, C]` -> `[B, ceil(T/pt), H_last, W_last, C_last]` after the final norm; with
 * `featuresOnly` the maps of `outIndices` (stage outputs before their merging, no norm).
 */
export class SwinTransformer3D extends VideoSwinTrunk {
  forward(x: tf.Tensor, opts?: ForwardOptions): tf.Tensor5D | tf.Tensor5D[];
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor5D | tf.Tensor5D[] {
    if (this.featuresOnly) return this.forwardStages(x, opts, this.outIndices);
    return this.forwardFeatures(x, opts);
  }

  /** The backbone output: the last stage after the final norm, `[B, D, h, w, C_last]`. */
  forwardFeatures(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor5D {
    this.checkInput(x);
    return tf.tidy(() => {
      const outs = this.runStages(this.embed(x, opts), opts);
      return this.norm.forward(outs[outs.length - 1]) as tf.Tensor5D;
    });
  }

  /** The stage maps `indices` (default all; before their merging, no norm), running no stage after the last. */
  forwardStages(x: tf.Tensor, opts: ForwardOptions = {}, indices: number[] = this.featureInfo.map((_, i) => i)): tf.Tensor5D[] {
    this.checkInput(x);
    const n = this.layers.length;
    const take = indices.map((i) => (i < 0 ? n + i : i));
    return tf.tidy(() => {
      const outs = this.runStages(this.embed(x, opts), opts, Math.max(...take));
      return take.map((i) => outs[i].clone());
    });
  }
}

/** Build a Video Swin backbone from `SwinTransformer3D` arguments in camelCase. */
export function videoSwin(config: VideoSwinConfig = {}): SwinTransformer3D {
  return new SwinTransformer3D(resolveVideoSwinConfig(config));
}
