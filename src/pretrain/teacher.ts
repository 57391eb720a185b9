import type * as tf from '@tensorflow/tfjs';

/** What a frozen teacher gives MILAN for a batch. */
export interface TeacherOutput {
  /** `[B, 1 + L, D]` features (class token first), the reconstruction target. */
  features: tf.Tensor3D;
  /** `[B, L]` positive importance of each patch (class-token attention), for semantic-aware masking. */
  importance?: tf.Tensor2D;
}

/** A frozen teacher: a function of the NHWC images. Its variables are never optimised by the wrappers. */
export type Teacher = (images: tf.Tensor) => TeacherOutput;
