/**
 * Linear probe: a frozen backbone's globally pooled features of labelled shape images, standardised
 * with the training split's statistics, and a softmax linear classifier trained on them (full batch,
 * Adam, a small L2 penalty); the score is the accuracy on a held-out split.
 */
import * as tf from '@tensorflow/tfjs';
import { Backbone, syntheticShapes } from '../../src/index.js';

/** Options of {@link linearProbe}. */
export interface ProbeOptions {
  imgSize: number;
  /** Seed of the labelled images (default 1234). */
  seed?: number;
  /** Images to train / test the classifier on (defaults 600 / 300). */
  train?: number;
  test?: number;
  /** Classifier steps (default 300), learning rate (default 0.05) and L2 penalty on the weights (default 1e-3). */
  steps?: number;
  lr?: number;
  weightDecay?: number;
}

/** Probe accuracies. */
export interface ProbeResult {
  trainAcc: number;
  testAcc: number;
  classes: number;
  features: number;
}

/** Pooled features `[N, D]` of the backbone for NHWC images, in chunks (eval mode, nothing kept). */
export function pooledFeatures(backbone: Backbone, images: tf.Tensor4D, chunk = 32): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let i = 0; i < images.shape[0]; i += chunk) {
    parts.push(
      tf.tidy(() => {
        const x = images.slice([i, 0, 0, 0], [Math.min(chunk, images.shape[0] - i), -1, -1, -1]);
        const f = backbone.forwardFeatures(x, { training: false });
        // NHWC maps (Swin, ConvNeXt) or [B, L, D] tokens (ViT): average over the spatial positions / tokens
        return (f.rank === 4 ? tf.mean(f, [1, 2]) : f.rank === 3 ? tf.mean(f, 1) : f) as tf.Tensor2D;
      }),
    );
  }
  const out = tf.concat(parts, 0);
  tf.dispose(parts);
  return out;
}

/** The labelled split `[start, start + n)` of the shapes set (classes cycle, so splits are balanced). */
export function labelledShapes(
  imgSize: number,
  seed: number,
  start: number,
  n: number,
): { images: tf.Tensor4D; labels: tf.Tensor1D; classes: number } {
  const ds = syntheticShapes({ imageSize: imgSize, seed });
  const { images, labels } = ds.batch(Array.from({ length: n }, (_, i) => start + i));
  return { images, labels, classes: ds.classNames.length };
}

/** Train a linear classifier on the frozen backbone's features and score it on held-out images. */
export async function linearProbe(backbone: Backbone, opts: ProbeOptions): Promise<ProbeResult> {
  const seed = opts.seed ?? 1234;
  const nTrain = opts.train ?? 600;
  const nTest = opts.test ?? 300;
  const wd = opts.weightDecay ?? 1e-3;
  const tr = labelledShapes(opts.imgSize, seed, 0, nTrain);
  const te = labelledShapes(opts.imgSize, seed, nTrain, nTest);
  const k = tr.classes;
  const fTr = pooledFeatures(backbone, tr.images);
  const fTe = pooledFeatures(backbone, te.images);
  const d = fTr.shape[1];
  const [xTr, xTe] = tf.tidy(() => {
    const { mean, variance } = tf.moments(fTr, 0);
    const sd = tf.sqrt(tf.add(variance, 1e-6));
    return [tf.div(tf.sub(fTr, mean), sd), tf.div(tf.sub(fTe, mean), sd)];
  });
  const yTr = tf.oneHot(tr.labels, k);
  const w = tf.tidy(() => tf.variable(tf.zeros([d, k])));
  const b = tf.tidy(() => tf.variable(tf.zeros([k])));
  const opt = tf.train.adam(opts.lr ?? 0.05);
  const steps = opts.steps ?? 300;
  for (let i = 0; i < steps; i++) {
    const cost = opt.minimize(
      () => tf.add(tf.losses.softmaxCrossEntropy(yTr, tf.add(tf.matMul(xTr, w), b)), tf.mul(wd, tf.sum(tf.square(w)))) as tf.Scalar,
      true,
    );
    cost?.dispose();
    if (i % 50 === 49) await tf.nextFrame();
  }
  const acc = (x: tf.Tensor2D, y: tf.Tensor1D) =>
    tf.tidy(() => tf.mean(tf.equal(tf.argMax(tf.add(tf.matMul(x, w), b), 1), y).toFloat()).dataSync()[0]);
  const result = { trainAcc: acc(xTr as tf.Tensor2D, tr.labels), testAcc: acc(xTe as tf.Tensor2D, te.labels), classes: k, features: d };
  opt.dispose();
  tf.dispose([tr.images, tr.labels, te.images, te.labels, fTr, fTe, xTr, xTe, yTr, w, b]);
  return result;
}
