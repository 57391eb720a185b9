/**
 * Linear probe of a frozen backbone: the final feature map of every image, flattened (the spatial
 * layout kept, as the shape classes need it), standardised with the training images' statistics,
 * and a softmax linear classifier trained on them (full batch, Adam, L2 penalty). The backbone is
 * only run forward, so the probe measures what its features already hold.
 */
import * as tf from '@tensorflow/tfjs';
import type { Backbone } from 'visbackbones';

/** Flattened final feature maps `[N, H*W*C]` of NHWC images, in chunks (eval mode). */
export function probeFeatures(backbone: Backbone, images: tf.Tensor4D, chunk = 100): tf.Tensor2D {
  const parts: tf.Tensor2D[] = [];
  for (let i = 0; i < images.shape[0]; i += chunk) {
    parts.push(
      tf.tidy(() => {
        const x = images.slice([i, 0, 0, 0], [Math.min(chunk, images.shape[0] - i), -1, -1, -1]);
        const f = backbone.forwardFeatures(x, { training: false });
        return f.reshape([f.shape[0], -1]) as tf.Tensor2D;
      }),
    );
  }
  const out = tf.concat(parts, 0) as tf.Tensor2D;
  tf.dispose(parts);
  return out;
}

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions {
  /** Adam steps on the full training set (default 300). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** L2 penalty on the weights (default 1e-3). */
  l2?: number;
}

/** Train a linear classifier on `train` features and return its accuracy on `test` features. Disposes nothing it was given. */
export function linearProbe(
  train: { x: tf.Tensor2D; labels: tf.Tensor1D },
  test: { x: tf.Tensor2D; labels: tf.Tensor1D },
  numClasses: number,
  opts: LinearProbeOptions = {},
): number {
  const [a, b, y] = tf.tidy(() => {
    const { mean, variance } = tf.moments(train.x, 0);
    const sd = tf.sqrt(tf.add(variance, 1e-5));
    return [tf.div(tf.sub(train.x, mean), sd), tf.div(tf.sub(test.x, mean), sd), tf.oneHot(train.labels, numClasses).toFloat()];
  });
  // tidy: the zeros the variables start from are tensors of their own
  const w = tf.tidy(() => tf.variable(tf.zeros([a.shape[1], numClasses])));
  const bias = tf.tidy(() => tf.variable(tf.zeros([numClasses])));
  const opt = tf.train.adam(opts.lr ?? 0.01);
  const l2 = opts.l2 ?? 1e-3;
  for (let i = 0; i < (opts.steps ?? 300); i++) {
    opt.minimize(
      () => tf.add(tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(a, w), bias)), tf.mul(l2, tf.sum(tf.square(w)))) as tf.Scalar,
    );
  }
  const acc = tf.tidy(() => tf.mean(tf.equal(tf.argMax(tf.add(tf.matMul(b, w), bias), 1), test.labels).toFloat()).dataSync()[0]);
  opt.dispose();
  tf.dispose([a, b, y, w, bias]);
  return acc;
}
