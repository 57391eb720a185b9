import * as tf from '@tensorflow/tfjs';
import { Module, ForwardOptions } from '../layers/module.js';

/**
 * What the SimMIM-style wrappers need from a backbone: its patch embedding can be edited (mask tokens)
 * before the trunk runs, and the trunk returns an NHWC map at `stride`. One adapter per family
 * (Swin / SwinV2: {@link swinMaskedEncoder}; ViT: `vitMaskedEncoder`).
 */
export interface MaskedEncoder {
  /** The backbone module (its parameters are the wrapper's `encoder.*`). */
  readonly module: Module;
  /** Patch size of the embedding: the mask grid is `[H / patchSize, W / patchSize]`. */
  readonly patchSize: number;
  /** Output stride of `encode`. */
  readonly stride: number;
  /** Width of the patch embedding (the mask token's width). */
  readonly embedDim: number;
  /** Width of the output features. */
  readonly numFeatures: number;
  readonly inChans: number;
  /**
   * Run the trunk on NHWC images, applying `edit` to the patch embedding `[B, h, w, embedDim]`;
   * returns the final-normed features, NHWC `[B, H/stride, W/stride, numFeatures]`.
   */
  encode(x: tf.Tensor, edit: ((tokens: tf.Tensor4D) => tf.Tensor) | null, opts?: ForwardOptions): tf.Tensor4D;
  /** Validate the input size (clear errors). */
  checkInput(x: tf.Tensor): void;
  /** Release adapter caches (not the backbone). */
  dispose(): void;
}
