import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { l2Normalize } from '../layers/attention.js';

/** A model with a text encoder: CoCa (or any CLIP-style model with `encodeText`), or a bare CLIP text tower. */
export type ZeroShotTextModel =
  | { encodeText(text: tf.Tensor, opts?: { normalize?: boolean }): tf.Tensor2D; text?: { contextLength: number } }
  | { forward(text: tf.Tensor): tf.Tensor2D; contextLength: number };

/** What the classifier needs of a tokenizer (a `ClipTokenizer`, or one mapping to a model's own ids). */
export interface ZeroShotTokenizer {
  contextLength: number;
  tokenize(texts: string[], contextLength?: number): tf.Tensor2D;
}

/** A prompt template: a string whose `{}` is replaced by the class name, or a function of it. */
export type ZeroShotTemplate = string | ((className: string) => string);

/**
 * Zero-shot classifier weights (Radford et al. 2021, sec. 3.1.2; open_clip's `build_zero_shot_classifier`): for
 * every class, the text features of each prompt template are L2-normalised, averaged and normalised again.
 * Returns `[embedDim, numClasses]`; the class logits of normalised image features `I` are `100 * I @ W`.
 */
export function zeroShotClassifier(
  model: ZeroShotTextModel,
  tokenizer: ZeroShotTokenizer,
  classNames: string[],
  templates: ZeroShotTemplate[],
  opts: { contextLength?: number } = {},
): tf.Tensor2D {
  check(Array.isArray(classNames) && classNames.length > 0, () => 'zeroShotClassifier needs at least one class name');
  check(Array.isArray(templates) && templates.length > 0, () => 'zeroShotClassifier needs at least one prompt template');
  const ctx =
    opts.contextLength ??
    ('encodeText' in model ? (model.text?.contextLength ?? tokenizer.contextLength) : (model as { contextLength: number }).contextLength);
  const encode = (ids: tf.Tensor): tf.Tensor =>
    'encodeText' in model
      ? model.encodeText(ids, { normalize: true })
      : l2Normalize((model as { forward(t: tf.Tensor): tf.Tensor2D }).forward(ids));
  const cols = classNames.map((name) => {
    const texts = templates.map((t) => (typeof t === 'function' ? t(name) : t.replaceAll('{}', name)));
    const ids = tokenizer.tokenize(texts, ctx);
    const col = tf.tidy(() => l2Normalize(tf.mean(encode(ids), 0)));
    ids.dispose();
    return col;
  });
  const w = tf.tidy(() => tf.stack(cols, 1) as tf.Tensor2D);
  tf.dispose(cols);
  return w;
}

/** Class logits `scale * normalize(imageFeatures) @ classifier` (`[B, numClasses]`), open_clip's zero-shot scale 100. */
export function zeroShotLogits(imageFeatures: tf.Tensor, classifier: tf.Tensor, scale = 100): tf.Tensor2D {
  check(
    imageFeatures.rank === 2 && classifier.rank === 2 && imageFeatures.shape[1] === classifier.shape[0],
    () => `image features [B, D] and classifier [D, C] do not fit: [${imageFeatures.shape.join(', ')}] vs [${classifier.shape.join(', ')}]`,
  );
  return tf.tidy(() => tf.mul(tf.matMul(l2Normalize(imageFeatures), classifier), scale) as tf.Tensor2D);
}
