import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ClipVisionTransformer } from '../models/clip/visionTransformer.js';
import type { Teacher, TeacherOutput } from './teacher.js';

type CustomGradFn = Parameters<typeof tf.customGrad>[0];

/**
 * Run `fn` on `x` outside the gradient tape (PyTorch's `torch.no_grad()`): the ops inside a custom-gradient
 * forward are not recorded, so no backward pass ever goes through them, and the result's gradient is zero.
 * `fn` returns one tensor.
 */
export function noGrad(fn: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor {
  const op = tf.customGrad(((input: tf.Tensor) => ({
    value: fn(input),
    gradFunc: () => tf.zerosLike(input),
  })) as unknown as CustomGradFn) as (input: tf.Tensor) => tf.Tensor;
  return op(x);
}

/** Options of {@link clipTeacher}. */
export interface ClipTeacherOptions {
  /**
   * Project the tokens with the tower's `proj` (default true: MILAN's `encode_image_featuremap`, features of
   * width `outputDim`); false gives the `ln_post` tokens of width `width`.
   */
  projected?: boolean;
}

/**
 * A frozen CLIP image tower ({@link ClipVisionTransformer}, e.g. an OpenAI / open_clip checkpoint loaded with
 * `prefix: 'visual.'`) as a MILAN / EVA teacher: its parameters are made non-trainable, and the features
 * (`forwardFeatureMap`: `ln_post` on every token, then the projection, `[B, 1 + N, D]`) and the importance (the
 * last block's class-token attention over the patches, `[B, N]`) are computed in eval mode outside the gradient
 * tape ({@link noGrad}). The caller owns the tower (dispose it after training).
 */
export function clipTeacher(
  model: ClipVisionTransformer,
  opts: ClipTeacherOptions = {},
): Teacher & { model: ClipVisionTransformer; dim: number } {
  check(model instanceof ClipVisionTransformer, () => `clipTeacher expects a clipVisionTransformer, got ${String(model)}`);
  check(model.attnPool === null, () => 'clipTeacher needs a CLIP image tower without attentional pooler (its tokens are the patches)');
  model.setTrainable(false);
  const projected = opts.projected ?? true;
  const dim = projected ? model.outputDim : model.width;
  const n = model.gridSize[0] * model.gridSize[1];
  const teacher = (images: tf.Tensor): TeacherOutput => {
    const b = images.shape[0];
    const packed = tf.tidy(() =>
      noGrad((x) => {
        const { features, importance } = model.forwardFeatureMap(x, { projected, importance: true });
        return tf.concat([features.reshape([b, (n + 1) * dim]), importance!], 1);
      }, images),
    );
    const out = tf.tidy(() => [
      packed.slice([0, 0], [b, (n + 1) * dim]).reshape([b, n + 1, dim]),
      packed.slice([0, (n + 1) * dim], [b, n]),
    ]);
    packed.dispose();
    return { features: out[0] as tf.Tensor3D, importance: out[1] as tf.Tensor2D };
  };
  return Object.assign(teacher, { model, dim });
}
