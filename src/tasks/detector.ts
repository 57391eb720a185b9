import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import type { Detections, DetTarget, ImageSize } from '../heads/detection/common.js';
import { Module } from '../layers/module.js';

/** What a detection head offers to {@link detector}. */
export interface DetectionHeadLike extends Module {
  detect(features: tf.Tensor4D[], imageSizes: ImageSize[], opts?: { paddedSize?: [number, number] }): Detections[];
  /** Named scalar losses (e.g. `{ classification, bboxRegression }`). */
  loss(features: tf.Tensor4D[], targets: DetTarget[], imageSizes: ImageSize[], opts?: { paddedSize?: [number, number] }): object;
}

/** Parts of a {@link Detector}. */
export interface DetectorParts {
  /** A featuresOnly backbone: `forward(x)` returns NHWC maps, finest first. */
  backbone: Module;
  /** FPN / simple feature pyramid (maps -> maps), or null to feed the backbone maps directly. */
  neck?: Module | null;
  head: DetectionHeadLike;
  /** Batch padding multiple (torchvision's `size_divisible`, default 32). */
  sizeDivisible?: number;
}

/**
 * Pads NHWC images at the bottom / right to one batch whose sides are multiples of `sizeDivisible`, as
 * torchvision's `GeneralizedRCNNTransform.batch_images` (no resizing, no normalisation: do those before).
 */
export function batchImages(images: tf.Tensor4D | tf.Tensor3D[], sizeDivisible = 32): { batch: tf.Tensor4D; imageSizes: ImageSize[] } {
  if (images instanceof tf.Tensor) {
    check(images.rank === 4, () => `batchImages: expected an NHWC batch or a list of HWC images, got shape [${images.shape.join(', ')}]`);
    const [, h, w] = images.shape;
    const ph = Math.ceil(h / sizeDivisible) * sizeDivisible;
    const pw = Math.ceil(w / sizeDivisible) * sizeDivisible;
    const batch = tf.pad(images, [
      [0, 0],
      [0, ph - h],
      [0, pw - w],
      [0, 0],
    ]) as tf.Tensor4D;
    return { batch, imageSizes: Array.from({ length: images.shape[0] }, () => [h, w] as ImageSize) };
  }
  check(Array.isArray(images) && images.length > 0, () => 'batchImages: expected at least one image');
  images.forEach((im, i) =>
    check(
      im.rank === 3 && im.shape[2] === images[0].shape[2],
      () => `batchImages: image ${i} must be HWC with ${images[0].shape[2]} channels, got [${im.shape.join(', ')}]`,
    ),
  );
  const ph = Math.ceil(Math.max(...images.map((i) => i.shape[0])) / sizeDivisible) * sizeDivisible;
  const pw = Math.ceil(Math.max(...images.map((i) => i.shape[1])) / sizeDivisible) * sizeDivisible;
  const batch = tf.tidy(() =>
    tf.stack(
      images.map((im) =>
        tf.pad(im, [
          [0, ph - im.shape[0]],
          [0, pw - im.shape[1]],
          [0, 0],
        ]),
      ),
    ),
  ) as tf.Tensor4D;
  return { batch, imageSizes: images.map((im) => [im.shape[0], im.shape[1]] as ImageSize) };
}

/** backbone -> neck -> detection head, with torchvision's batching of differently sized images. */
export class Detector extends Module {
  readonly backbone: Module;
  readonly neck: Module | null;
  readonly head: DetectionHeadLike;
  readonly sizeDivisible: number;
  constructor(parts: DetectorParts) {
    super();
    check(parts?.backbone instanceof Module && parts.head instanceof Module, () => 'detector: backbone and head must be modules');
    this.backbone = this.addModule('backbone', parts.backbone);
    this.neck = parts.neck ? this.addModule('neck', parts.neck) : null;
    this.head = this.addModule('head', parts.head);
    this.sizeDivisible = parts.sizeDivisible ?? 32;
  }

  /** Pyramid features of a padded batch. */
  features(batch: tf.Tensor4D, opts: { training?: boolean } = {}): tf.Tensor4D[] {
    return tf.tidy(() => {
      const maps = this.backbone.forward(batch, opts) as tf.Tensor4D[];
      check(Array.isArray(maps), 'detector: the backbone must be featuresOnly (forward returns a list of NHWC maps)');
      return this.neck ? (this.neck.forward(maps, opts) as tf.Tensor4D[]) : maps;
    });
  }

  forward(images: tf.Tensor4D | tf.Tensor3D[]): Detections[] {
    return this.detect(images);
  }

  /** Detections (boxes, scores, labels, masks for Mask R-CNN) per image, in each image's own pixels. */
  detect(images: tf.Tensor4D | tf.Tensor3D[]): Detections[] {
    const { batch, imageSizes } = batchImages(images, this.sizeDivisible);
    const feats = this.features(batch);
    const dets = this.head.detect(feats, imageSizes, { paddedSize: [batch.shape[1], batch.shape[2]] });
    tf.dispose([batch, ...feats]);
    return dets;
  }

  /** The head's training losses for images and their targets. */
  loss(images: tf.Tensor4D | tf.Tensor3D[], targets: DetTarget[]): Record<string, tf.Scalar> {
    return tf.tidy(() => {
      const { batch, imageSizes } = batchImages(images, this.sizeDivisible);
      return this.head.loss(this.features(batch, { training: true }), targets, imageSizes, {
        paddedSize: [batch.shape[1], batch.shape[2]],
      }) as Record<string, tf.Scalar>;
    });
  }
}

/** Compose a {@link Detector}. */
export function detector(parts: DetectorParts): Detector {
  return new Detector(parts);
}
