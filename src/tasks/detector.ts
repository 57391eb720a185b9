import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import type { Detections, DetTarget, ImageSize } from '../heads/detection/common.js';
import { FcosHead, MaskRcnnHeads, RetinaNetHead, fcos, maskRcnnHeads, retinaNet } from '../heads/detection/index.js';
import type { FcosConfig, MaskRcnnConfig, RetinaNetConfig } from '../heads/detection/index.js';
import { FPN, fpn } from '../heads/fpn.js';
import type { FpnOptions } from '../heads/fpn.js';
import { SimpleFeaturePyramid, simpleFeaturePyramid } from '../heads/simpleFeaturePyramid.js';
import type { SimpleFeaturePyramidOptions } from '../heads/simpleFeaturePyramid.js';
import { Module } from '../layers/module.js';
import { getFamily } from '../models/registry.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';

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
      if (!this.neck) return maps;
      if ((this.neck as { inputKind?: string }).inputKind === 'map')
        return this.neck.forward(maps[this.mapLevel(maps.length)], opts) as tf.Tensor4D[];
      return this.neck.forward(maps, opts) as tf.Tensor4D[];
    });
  }

  /**
   * The backbone map a one-map neck (the simple feature pyramid) takes: the last map at the neck's
   * `inStride` (from the backbone's `featureInfo` and `outIndices`), else the last map.
   */
  private mapLevel(numMaps: number): number {
    const b = this.backbone as { featureInfo?: { reduction: number }[]; outIndices?: number[] };
    const all = b.featureInfo ?? [];
    const info = b.outIndices?.length === numMaps ? b.outIndices.map((i) => all[i]) : all;
    const stride = (this.neck as { inStride?: number } | null)?.inStride;
    if (info.length !== numMaps || info.some((l) => !l)) return numMaps - 1;
    let at = info.length - 1;
    if (stride !== undefined) for (let i = 0; i < info.length; i++) if (info[i].reduction === stride) at = i;
    return at;
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

/**
 * What rebuilds a {@link Detector} (the `config.json` of a detector folder): the backbone's family and
 * resolved config, the neck and head types with their configs, the batch padding, and optionally the
 * class names (index = label id; Mask R-CNN's 0 is the background) and the `(x - mean) / std`
 * normalisation of [0, 1] RGB images the detector was trained on.
 */
export interface DetectorSpec {
  format: 'visbackbones-detector';
  backbone: { family: string; config: Record<string, unknown> };
  neck: { type: 'fpn' | 'simpleFeaturePyramid'; config: Record<string, unknown> } | null;
  head: { type: 'retinanet' | 'fcos' | 'maskrcnn'; config: Record<string, unknown> };
  sizeDivisible: number;
  classNames?: string[] | null;
  mean?: number[];
  std?: number[];
}

/** The {@link DetectorSpec} of a detector (its parts must be a registered backbone, an FPN / simple feature pyramid and a library head). */
export function detectorSpec(det: Detector, extra: Pick<DetectorSpec, 'classNames' | 'mean' | 'std'> = {}): DetectorSpec {
  const family = (det.backbone as { family?: string }).family;
  check(!!family, 'detectorSpec: the backbone has no registered family (build it with createModel or a family factory)');
  const n = det.neck;
  check(
    n === null || n instanceof FPN || n instanceof SimpleFeaturePyramid,
    () => `detectorSpec: the neck must be an FPN or a simple feature pyramid, got ${n?.constructor.name}`,
  );
  const h = det.head;
  const type = h instanceof RetinaNetHead ? 'retinanet' : h instanceof FcosHead ? 'fcos' : h instanceof MaskRcnnHeads ? 'maskrcnn' : null;
  check(type !== null, () => `detectorSpec: the head must be a RetinaNet, FCOS or Mask R-CNN head, got ${h.constructor.name}`);
  return {
    format: 'visbackbones-detector',
    backbone: { family: family!, config: { ...det.backbone.config } },
    neck: n ? { type: n instanceof FPN ? 'fpn' : 'simpleFeaturePyramid', config: { ...n.config } } : null,
    head: { type: type!, config: { ...h.config } },
    sizeDivisible: det.sizeDivisible,
    ...extra,
  };
}

/** Build a fresh (randomly initialised) {@link Detector} from its {@link DetectorSpec}. */
export function buildDetector(spec: DetectorSpec): Detector {
  check(
    spec?.format === 'visbackbones-detector' && !!spec.backbone?.family && !!spec.head?.type,
    'buildDetector: not a detector spec (needs format "visbackbones-detector", backbone.family, head.type)',
  );
  const backbone = getFamily(spec.backbone.family).create(spec.backbone.config);
  const neck = !spec.neck
    ? null
    : spec.neck.type === 'fpn'
      ? fpn(spec.neck.config as unknown as FpnOptions)
      : spec.neck.type === 'simpleFeaturePyramid'
        ? simpleFeaturePyramid(spec.neck.config as unknown as SimpleFeaturePyramidOptions)
        : null;
  check(
    !spec.neck || neck !== null,
    () => `buildDetector: unknown neck type '${spec.neck?.type}' (expected 'fpn' or 'simpleFeaturePyramid')`,
  );
  const c = spec.head.config;
  const t = spec.head.type;
  check(
    ['retinanet', 'fcos', 'maskrcnn'].includes(t),
    () => `buildDetector: unknown head type '${t}' (expected retinanet, fcos or maskrcnn)`,
  );
  const head =
    t === 'retinanet'
      ? retinaNet(c as unknown as RetinaNetConfig)
      : t === 'fcos'
        ? fcos(c as unknown as FcosConfig)
        : maskRcnnHeads(c as unknown as MaskRcnnConfig);
  return detector({ backbone, neck, head, sizeDivisible: spec.sizeDivisible });
}

/** A detector as two files: `config` (the {@link DetectorSpec} as JSON) and `weights` (its state dict as safetensors). */
export function serializeDetector(
  det: Detector,
  extra: Pick<DetectorSpec, 'classNames' | 'mean' | 'std'> = {},
): { config: string; weights: Uint8Array } {
  const spec = detectorSpec(det, extra);
  const sd = det.stateDict();
  try {
    return { config: `${JSON.stringify(spec, null, 2)}\n`, weights: writeSafetensors(sd, { format: 'pt' }) };
  } finally {
    tf.dispose(Object.values(sd));
  }
}

/** Rebuild a detector written by {@link serializeDetector} (strict weight load). */
export function deserializeDetector(config: string, weights: Uint8Array): { detector: Detector; spec: DetectorSpec } {
  let spec: DetectorSpec;
  try {
    spec = JSON.parse(config) as DetectorSpec;
  } catch (e) {
    throw new VisBackbonesError(`detector config: invalid JSON (${(e as Error).message})`);
  }
  const det = buildDetector(spec);
  const sd = readSafetensors(weights);
  try {
    det.loadStateDict(sd);
  } catch (e) {
    det.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(sd));
  }
  return { detector: det, spec };
}
