import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { DataConfig, resolveDataConfig } from '../data/dataConfig.js';
import { labelsFor } from '../data/labels.js';
import { ImageSource, readImage } from '../data/readImage.js';
import { createTransform } from '../data/transforms.js';

/** One predicted class. */
export interface ClassPrediction {
  index: number;
  /** The class name (ImageNet description, the cfg's `labelNames`, or `'class <i>'` without names). */
  label: string;
  probability: number;
}

/** Options of {@link classify}. */
export interface ClassifyOptions {
  /** How many classes per image (default 5). */
  topk?: number;
  /** Class names (default: the model's pretrained cfg's, by its class count). */
  labels?: string[];
  /** Preprocessing (default `resolveDataConfig(model)`); raw images only. */
  dataConfig?: DataConfig;
  /** Images per forward pass (default 8). */
  batchSize?: number;
}

/** What {@link classify} needs of a model: a classifier forward and (optionally) its pretrained cfg. */
export interface Classifier {
  forward(x: tf.Tensor): unknown;
  numClasses: number;
  pretrainedCfg?: Record<string, unknown> | null;
}

type ImageInput = tf.Tensor3D | ImageSource;

/**
 * Top-k classes of images, as timm's `inference.py`: each image (an `[H, W, 3]` 0..255 tensor as
 * `readImage` gives, or a path / bytes to read) goes through the model's eval transform, then
 * `softmax(logits)` and the `topk` most probable classes with their names. A `[B, H, W, 3]` tensor is
 * taken as an already preprocessed batch. Returns one list per image.
 */
export async function classify(
  model: Classifier,
  images: ImageInput | ImageInput[] | tf.Tensor4D,
  opts: ClassifyOptions = {},
): Promise<ClassPrediction[][]> {
  check(model && typeof model.forward === 'function', () => 'classify: expected a model with forward()');
  check(
    model.numClasses > 0,
    () => `classify: the model has no classifier (numClasses ${model.numClasses}); create it with the checkpoint's classes`,
  );
  const topk = Math.min(opts.topk ?? 5, model.numClasses);
  check(Number.isInteger(topk) && topk > 0, () => `classify: topk must be a positive integer, got ${opts.topk}`);
  const labels = opts.labels ?? (model.pretrainedCfg ? await labelsFor(model.pretrainedCfg) : null);
  const name = (i: number) => (labels && labels[i] !== undefined ? labels[i] : `class ${i}`);
  const batchSize = opts.batchSize ?? 8;
  const batches: (() => Promise<tf.Tensor4D>)[] = [];
  if (images instanceof tf.Tensor && images.rank === 4) {
    batches.push(async () => tf.clone(images as tf.Tensor4D));
  } else {
    const list = Array.isArray(images) ? images : [images as ImageInput];
    check(list.length > 0, () => 'classify: no images');
    const transform = createTransform(opts.dataConfig ?? resolveDataConfig(model as unknown as Record<string, unknown>));
    for (let s = 0; s < list.length; s += batchSize) {
      const chunk = list.slice(s, s + batchSize);
      batches.push(async () => {
        const xs: tf.Tensor3D[] = [];
        try {
          for (const im of chunk) {
            const owned = !(im instanceof tf.Tensor);
            const img = owned ? await readImage(im as ImageSource) : (im as tf.Tensor3D);
            try {
              xs.push(transform(img));
            } finally {
              if (owned) img.dispose();
            }
          }
          return tf.stack(xs) as tf.Tensor4D;
        } finally {
          tf.dispose(xs);
        }
      });
    }
  }
  const out: ClassPrediction[][] = [];
  for (const make of batches) {
    const x = await make();
    const [values, indices] = tf.tidy(() => {
      const logits = model.forward(x) as tf.Tensor;
      check(logits instanceof tf.Tensor && logits.rank === 2, () => 'classify: the model returned no [B, classes] logits');
      const { values: v, indices: i } = tf.topk(tf.softmax(logits), topk);
      return [v, i];
    });
    x.dispose();
    const v = values.arraySync() as number[][];
    const ix = indices.arraySync() as number[][];
    tf.dispose([values, indices]);
    for (let b = 0; b < v.length; b++) out.push(v[b].map((p, k) => ({ index: ix[b][k], label: name(ix[b][k]), probability: p })));
  }
  return out;
}
