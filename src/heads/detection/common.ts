import * as tf from '@tensorflow/tfjs';
import { normal } from '../../layers/init.js';
import { check } from '../../errors.js';
import { batchedNmsValues } from '../../layers/detection/nms.js';
import type { ImageSize } from '../../layers/detection/index.js';
import { clipBoxesToImage } from '../../layers/detection/boxes.js';
import { Conv2d } from '../../layers/conv2d.js';

export type { ImageSize };

/** Ground truth of one image: boxes `[n, 4]` (x1, y1, x2, y2 in padded-batch pixels), labels, optional masks `[n, H, W]`. */
export interface DetTarget {
  boxes: tf.Tensor2D;
  labels: tf.Tensor1D | number[];
  masks?: tf.Tensor3D;
}

/** Final detections of one image, in decreasing score order. */
export interface Detections {
  boxes: tf.Tensor2D;
  scores: tf.Tensor1D;
  labels: tf.Tensor1D;
  masks?: tf.Tensor3D;
}

/** How the padded batch size is known. */
export interface PadOptions {
  /** The `[H, W]` of the padded batch the backbone saw. */
  paddedSize?: [number, number];
  /** Default 32 (torchvision's `GeneralizedRCNNTransform`). */
  sizeDivisible?: number;
}

/** `opts.paddedSize`, or the largest image size rounded up to `sizeDivisible` (default 32). */
export function resolvePaddedSize(imageSizes: ImageSize[], opts: PadOptions = {}): [number, number] {
  if (opts.paddedSize) {
    check(
      opts.paddedSize.length === 2 && opts.paddedSize.every((v) => Number.isInteger(v) && v > 0),
      () => `paddedSize must be [H, W] positive integers, got ${JSON.stringify(opts.paddedSize)}`,
    );
    return [opts.paddedSize[0], opts.paddedSize[1]];
  }
  checkImageSizes(imageSizes);
  const d = opts.sizeDivisible ?? 32;
  const h = Math.max(...imageSizes.map((s) => s[0]));
  const w = Math.max(...imageSizes.map((s) => s[1]));
  return [Math.ceil(h / d) * d, Math.ceil(w / d) * d];
}

/** Check a list of `[height, width]` image sizes. */
export function checkImageSizes(imageSizes: ImageSize[], batch?: number): void {
  check(
    Array.isArray(imageSizes) && imageSizes.length > 0,
    () => `imageSizes must be a non-empty list of [height, width], got ${JSON.stringify(imageSizes)}`,
  );
  imageSizes.forEach((s, i) =>
    check(
      Array.isArray(s) && s.length === 2 && s.every((v) => Number.isFinite(v) && v > 0),
      () => `imageSizes[${i}] must be [height, width], got ${JSON.stringify(s)}`,
    ),
  );
  if (batch !== undefined) check(imageSizes.length === batch, () => `imageSizes lists ${imageSizes.length} images for a batch of ${batch}`);
}

/** `[H_l, W_l]` of each NHWC level, or the sizes themselves. */
export function featureSizesOf(features: tf.Tensor4D[] | ImageSize[]): ImageSize[] {
  check(Array.isArray(features) && features.length > 0, () => 'features must be a non-empty list of NHWC maps or [H, W] sizes');
  return features.map((f) => (f instanceof tf.Tensor ? [f.shape[1], f.shape[2]] : [f[0], f[1]]) as ImageSize);
}

/** Check NHWC levels: rank 4, same batch, `channels` channels. */
export function checkLevels(features: tf.Tensor4D[], channels: number, what: string): void {
  check(Array.isArray(features) && features.length > 0, () => `${what}: features must be a non-empty list of NHWC maps`);
  features.forEach((f, l) => {
    check(f instanceof tf.Tensor && f.rank === 4, () => `${what}: level ${l} must be an NHWC tensor of rank 4`);
    check(
      f.shape[3] === channels,
      () => `${what}: level ${l} has ${f.shape[3]} channels, expected ${channels} (NHWC shape [${f.shape.join(', ')}])`,
    );
    check(f.shape[0] === features[0].shape[0], () => `${what}: level ${l} has batch ${f.shape[0]}, level 0 has ${features[0].shape[0]}`);
  });
}

/** Check per-image targets. */
export function checkTargets(targets: DetTarget[], batch: number, what: string): void {
  check(
    Array.isArray(targets) && targets.length === batch,
    () => `${what}: expected ${batch} targets (one per image), got ${Array.isArray(targets) ? targets.length : typeof targets}`,
  );
  targets.forEach((t, i) => {
    check(
      t && t.boxes instanceof tf.Tensor && t.boxes.rank === 2 && t.boxes.shape[1] === 4,
      () => `${what}: targets[${i}].boxes must be [n, 4]`,
    );
    const n = t.labels instanceof tf.Tensor ? t.labels.size : t.labels?.length;
    check(n === t.boxes.shape[0], () => `${what}: targets[${i}] has ${t.boxes.shape[0]} boxes but ${n} labels`);
  });
}

/** Labels of a target as plain integers. */
export function labelValues(t: DetTarget): Int32Array {
  return Int32Array.from(t.labels instanceof tf.Tensor ? (t.labels.dataSync() as ArrayLike<number>) : t.labels);
}

/** A 3x3 (or `k`) conv initialised as torchvision's detection heads: weights N(0, std), bias `bias`. */
export function headConv(inC: number, outC: number, opts: { k?: number; bias?: boolean; std?: number; biasValue?: number } = {}): Conv2d {
  const k = opts.k ?? 3;
  const conv = new Conv2d(inC, outC, k, { padding: (k - 1) / 2, bias: opts.bias ?? true });
  tf.tidy(() => conv.weight.variable.assign(normal(conv.weight.variable.shape, opts.std ?? 0.01)));
  tf.tidy(() => conv.bias?.variable.assign(tf.fill([outC], opts.biasValue ?? 0)));
  return conv;
}

/** Settings of the dense (RetinaNet / FCOS) postprocess. */
export interface DensePostprocessConfig {
  scoreThresh: number;
  topkCandidates: number;
  nmsThresh: number;
  detectionsPerImg: number;
}

/**
 * Per level: scores `> scoreThresh`, the top `topkCandidates`, anchor = idx / K and label = idx % K;
 * then the chosen boxes are decoded by `decode(rows)`, clipped, batched-NMS'd by label and cut to
 * `detectionsPerImg` (torchvision's `RetinaNet` / `FCOS` `postprocess_detections`).
 */
export function densePostprocess(
  scores: Float32Array,
  numClasses: number,
  levelCounts: number[],
  decode: (anchorIdx: Int32Array) => tf.Tensor2D,
  imageSize: ImageSize,
  cfg: DensePostprocessConfig,
): Detections {
  const thresh = Math.fround(cfg.scoreThresh);
  const chosen: number[] = [];
  let start = 0;
  for (const n of levelCounts) {
    const cand: number[] = [];
    for (let i = start * numClasses; i < (start + n) * numClasses; i++) if (scores[i] > thresh) cand.push(i);
    cand.sort((a, b) => scores[b] - scores[a] || a - b);
    chosen.push(...cand.slice(0, Math.min(cfg.topkCandidates, cand.length)));
    start += n;
  }
  const anchorIdx = Int32Array.from(chosen, (i) => Math.floor(i / numClasses));
  const labels = Int32Array.from(chosen, (i) => i % numClasses);
  const sc = Float32Array.from(chosen, (i) => scores[i]);
  return tidyDetections(() => {
    const boxes = clipBoxesToImage(decode(anchorIdx), imageSize);
    const keep = batchedNmsValues(boxes.dataSync() as Float32Array, sc, labels, cfg.nmsThresh).slice(0, cfg.detectionsPerImg);
    const ki = tf.tensor1d(Int32Array.from(keep), 'int32');
    return {
      boxes: tf.gather(boxes, ki) as tf.Tensor2D,
      scores: tf.tensor1d(Float32Array.from(keep, (k) => sc[k])),
      labels: tf.tensor1d(
        Int32Array.from(keep, (k) => labels[k]),
        'int32',
      ),
    };
  });
}

/** Rename state-dict keys by a list of (pattern, replacement) rules (old checkpoint layouts). */
export function renameKeys(
  sd: Record<string, tf.Tensor>,
  rules: [RegExp, string | ((...m: string[]) => string)][],
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(sd)) {
    let nk = k;
    for (const [re, rep] of rules) nk = nk.replace(re, rep as string);
    out[nk] = v;
  }
  return out;
}

/** `tf.tidy` for a function returning {@link Detections} (its tensors are kept). */
export function tidyDetections<T extends Detections | Detections[]>(fn: () => T): T {
  return tf.tidy(fn as unknown as () => tf.TensorContainer) as unknown as T;
}
