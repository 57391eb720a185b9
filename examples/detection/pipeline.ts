/**
 * The detection demo's pipeline, importable (its test runs it at a tiny setting): RetinaNet (v2 recipe:
 * GroupNorm towers, GIoU box loss) on a small PVT v2 + FPN, and Mask R-CNN on a small plain ViT (ViTDet)
 * + simple feature pyramid, trained with the library's `Trainer` on seeded synthetic shape images
 * (several objects per image, boxes and instance masks; the RetinaNet images also differ in size, so
 * batches are padded as torchvision does), then evaluated with COCO's box AP on held-out images (a
 * different seed) next to the same architecture at its initial weights, drawn into a PNG (predicted
 * boxes, and masks for Mask R-CNN, next to the ground truth) and saved as a detector folder that
 * `visbackbones detect` reads. It imports only the package (`visbackbones`).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import {
  cocoEvaluate,
  createModel,
  detector,
  encodePng,
  fpn,
  imageGrid,
  manualSeed,
  maskRcnnHeads,
  retinaNet,
  serializeDetector,
  SHAPES_MEAN,
  SHAPES_STD,
  simpleFeaturePyramid,
  syntheticDetection,
  textImage,
  Trainer,
} from 'visbackbones';
import type {
  CocoStats,
  Detections,
  RetinaNetConfig,
  Detector,
  DetectionSample,
  RgbImage,
  SyntheticDetection,
  SyntheticDetectionOptions,
} from 'visbackbones';

/** The two detectors of the demo. */
export type DemoDetector = 'retinanet' | 'maskrcnn';

/** Options of {@link runDetectionDemo}. */
export interface DetectionDemoOptions {
  /** Which detectors to train (default both). */
  detectors?: DemoDetector[];
  /** Training steps per detector (default {@link DETECTION_FULL.steps}). */
  steps?: number;
  /** Images per step (default 8). */
  batchSize?: number;
  /** Distinct training images (default 512). */
  trainImages?: number;
  /** Held-out images for the AP (default 100). */
  testImages?: number;
  /** Peak AdamW learning rate (default 3e-3). */
  lr?: number;
  /** Changes to the synthetic data of both detectors (e.g. `{ numClasses: 1 }`). */
  data?: Partial<SyntheticDetectionOptions>;
  /**
   * PVT v2 stages RetinaNet's FPN takes (default [0, 1, 2, 3]: strides 4 to 32, anchors 8 / 12 px on the
   * finest level, doubling per level; with other levels give the anchors in `retinaNet`). The stride-4
   * level matters for these small objects: with strides 8-32 only, the tiny setting reached a third of the AP.
   */
  retinaNetLevels?: number[];
  /** Changes to the RetinaNet head's config (e.g. `{ norm: 'none', boxLoss: 'l1' }` for the v1 recipe). */
  retinaNet?: Partial<RetinaNetConfig>;
  /** Model width: 'demo' (default) or 'tiny' (the test's setting). */
  size?: 'demo' | 'tiny';
  /** Seed of the data, the initialisation and the samplers (default 0); the held-out images use seed + 1000. */
  seed?: number;
  /** Output folder (PNG, detector folders, results.json); none: nothing is written. */
  out?: string;
  /** Print progress (default true). */
  verbose?: boolean;
}

/** The default steps of a full run and of the test's setting. */
export const DETECTION_FULL = { steps: 300 };
export const DETECTION_QUICK = { steps: 150 };

/** What one detector reached. */
export interface DetectorResult {
  name: string;
  /** Box AP etc. on the held-out images after training. */
  stats: CocoStats;
  /** The same at the initial weights (before training). */
  initialStats: CocoStats;
  /** Mask AP etc. (COCO 'segm') on the held-out images after training (Mask R-CNN). */
  maskStats?: CocoStats;
  /** Mean loss of the first and last 10 % of the steps. */
  firstLoss: number;
  lastLoss: number;
  steps: number;
  parameters: number;
  seconds: number;
  /** Folder written by `serializeDetector` (config.json + model.safetensors), when `out` is set. */
  dir?: string;
}

/** What {@link runDetectionDemo} returns. */
export interface DetectionDemoResult {
  results: DetectorResult[];
  testImages: number;
  /** The predictions PNG, when `out` is set. */
  png?: string;
  seconds: number;
}

/** The data of each detector: RetinaNet images vary in size (padded batches), ViTDet's are square (absolute position embeddings). */
function dataFor(which: DemoDetector, seed: number): SyntheticDetectionOptions {
  return which === 'retinanet'
    ? { seed, numClasses: 3, minImageSize: 56, maxImageSize: 72, minObjects: 1, maxObjects: 3, minObjectSize: 12, maxObjectSize: 32 }
    : { seed, numClasses: 3, imageSize: 64, minObjects: 1, maxObjects: 3, minObjectSize: 12, maxObjectSize: 32 };
}

/** RetinaNet (v2 recipe) on PVT v2 (strides 4 to 32 by default) + FPN. */
export function buildRetinaNet(
  size: 'demo' | 'tiny',
  numClasses: number,
  overrides: Partial<RetinaNetConfig> = {},
  levels: number[] = [0, 1, 2, 3],
): Detector {
  const tiny = size === 'tiny';
  const backbone = createModel('pvt_v2_b0', {
    embedDims: tiny ? [16, 24, 32, 48] : [32, 48, 64, 96],
    depths: tiny ? [1, 1, 1, 1] : [2, 2, 2, 2],
    numHeads: [1, 1, 2, 2],
    mlpRatios: [4, 4, 4, 4],
    featuresOnly: true,
    outIndices: levels,
  });
  const chans = 32;
  const neck = fpn({ inChannels: backbone.outIndices.map((i) => backbone.featureInfo[i].numChs), outChans: chans });
  const head = retinaNet({
    numClasses,
    inChannels: chans,
    anchorSizes: levels.map((l) => [8 * 2 ** l, 12 * 2 ** l]), // 8 / 12 px at stride 4, doubling per stage
    aspectRatios: levels.map(() => [0.5, 1, 2]),
    norm: 'group_norm',
    numGroups: 8,
    boxLoss: 'giou',
    scoreThresh: 0.01,
    detectionsPerImg: 100,
    ...overrides,
  });
  return detector({ backbone, neck, head });
}

/** Mask R-CNN on a plain ViT (patch 8, windowed + global attention, relative positions) + simple feature pyramid. */
export function buildMaskRcnn(size: 'demo' | 'tiny', numClasses: number): Detector {
  const tiny = size === 'tiny';
  const dim = tiny ? 48 : 96;
  const backbone = createModel('samvit_base_patch16', {
    imgSize: 64,
    patchSize: 8,
    embedDim: dim,
    depth: tiny ? 2 : 4,
    numHeads: tiny ? 2 : 4,
    windowSize: 4,
    globalAttnIndexes: tiny ? [1] : [1, 3],
    neckChans: null,
    featuresOnly: true,
  });
  const chans = 32;
  const neck = simpleFeaturePyramid({ inChans: dim, outChans: chans, scaleFactors: [2, 1, 0.5], inStride: 8, topBlock: true });
  const head = maskRcnnHeads({
    numClasses: numClasses + 1,
    inChannels: chans,
    featureNames: ['0', '1', '2', 'pool'],
    roiFeatmapNames: ['0', '1', '2'],
    rpnAnchorSizes: [[12], [24], [48], [96]],
    rpnAspectRatios: [
      [0.5, 1, 2],
      [0.5, 1, 2],
      [0.5, 1, 2],
      [0.5, 1, 2],
    ],
    rpnPreNmsTopNTrain: 300,
    rpnPostNmsTopNTrain: 150,
    rpnPreNmsTopNTest: 200,
    rpnPostNmsTopNTest: 100,
    rpnBatchSizePerImage: 64,
    boxBatchSizePerImage: 64,
    canonicalScale: 32,
    canonicalLevel: 3,
    representationSize: tiny ? 64 : 128,
    maskLayers: tiny ? [32] : [32, 32],
    maskDimReduced: 32,
    boxScoreThresh: 0.01,
    boxDetectionsPerImg: 100,
  });
  const det = detector({ backbone, neck, head });
  // SAM's conv neck / final norm only feeds forwardFeatures; the simple feature pyramid takes the
  // neck-free output of the last block (as detectron2's ViTDet), so those weights get no gradient
  for (const [n, p] of det.namedParameters()) if (n.startsWith('backbone.neck.')) p.trainable = false;
  return det;
}

interface Batch {
  images: tf.Tensor3D[];
  targets: { boxes: tf.Tensor2D; labels: number[]; masks?: tf.Tensor3D }[];
}

/** COCO ground truth of a list of samples (labels as the data's classes). */
function groundTruth(samples: DetectionSample[]) {
  return samples.map((s) => ({ boxes: s.boxes, labels: s.labels }));
}

/** Detections of `samples` as plain arrays (labels shifted back to the data's classes), plus the raw tensors' masks. */
function predict(
  det: Detector,
  data: SyntheticDetection,
  indices: number[],
  labelOffset: number,
  batchSize: number,
): { boxes: number[][]; scores: number[]; labels: number[]; masks?: Float32Array[] }[] {
  const out: { boxes: number[][]; scores: number[]; labels: number[]; masks?: Float32Array[] }[] = [];
  for (let s = 0; s < indices.length; s += batchSize) {
    const { images, targets } = data.batch(indices.slice(s, s + batchSize));
    const dets: Detections[] = det.detect(images);
    for (const d of dets) {
      const n = d.scores.shape[0];
      const masks = d.masks ? (d.masks.arraySync() as number[][][]).map((m) => Float32Array.from(m.flat())) : undefined;
      out.push({
        boxes: d.boxes.arraySync() as number[][],
        scores: Array.from(d.scores.dataSync()).slice(0, n),
        labels: Array.from(d.labels.dataSync()).map((l) => l - labelOffset),
        ...(masks ? { masks } : {}),
      });
      tf.dispose([d.boxes, d.scores, d.labels, ...(d.masks ? [d.masks] : [])]);
    }
    tf.dispose([images, targets.map((t) => t.boxes)]);
  }
  return out;
}

/** Detections drawn in the PNG: score at least this. */
export const SHOW_SCORE = 0.3;

/** A distinct colour per class. */
const CLASS_COLOURS: [number, number, number][] = [
  [1, 0.2, 0.2],
  [0.2, 1, 0.3],
  [0.3, 0.5, 1],
  [1, 0.9, 0.1],
  [1, 0.3, 1],
  [0.2, 1, 1],
];

/** Draw an image with boxes (1 px outlines) and optionally masks (blended) of one class colour each. */
function drawDetections(
  s: DetectionSample,
  boxes: number[][],
  labels: number[],
  masks: (Float32Array | Uint8Array)[] | undefined,
  scale: number,
): RgbImage {
  const w = s.width * scale;
  const h = s.height * scale;
  const data = new Float32Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = s.image[(Math.floor(y / scale) * s.width + Math.floor(x / scale)) * 3 + c];
  masks?.forEach((m, i) => {
    const col = CLASS_COLOURS[labels[i] % CLASS_COLOURS.length];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        if (m[Math.floor(y / scale) * s.width + Math.floor(x / scale)] < 0.5) continue;
        for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = 0.45 * data[(y * w + x) * 3 + c] + 0.55 * col[c];
      }
  });
  boxes.forEach((b, i) => {
    const col = CLASS_COLOURS[labels[i] % CLASS_COLOURS.length];
    const [x1, y1, x2, y2] = b.map((v) => Math.round(v * scale));
    const put = (x: number, y: number) => {
      if (x >= 0 && y >= 0 && x < w && y < h) data.set(col, (y * w + x) * 3);
    };
    for (let t = 0; t < 2; t++) {
      // 2 px outlines
      for (let x = x1; x < x2; x++) {
        put(x, y1 + t);
        put(x, y2 - 1 - t);
      }
      for (let y = y1; y < y2; y++) {
        put(x1 + t, y);
        put(x2 - 1 - t, y);
      }
    }
  });
  return { width: w, height: h, data };
}

function count(det: Detector): number {
  return det.namedParameters().reduce((a, [, p]) => a + p.variable.size, 0);
}

/**
 * Train and evaluate the demo's detectors (see the file comment). Returns the held-out COCO box AP of
 * each, before and after training.
 */
export async function runDetectionDemo(opts: DetectionDemoOptions = {}): Promise<DetectionDemoResult> {
  const t0 = performance.now();
  const which = opts.detectors ?? ['retinanet', 'maskrcnn'];
  const steps = opts.steps ?? DETECTION_FULL.steps;
  const batchSize = opts.batchSize ?? 8;
  const trainImages = opts.trainImages ?? 512;
  const testImages = opts.testImages ?? 100;
  const seed = opts.seed ?? 0;
  const size = opts.size ?? 'demo';
  const verbose = opts.verbose ?? true;
  const log = (s: string) => verbose && console.log(s);
  if (opts.out) mkdirSync(opts.out, { recursive: true });
  const results: DetectorResult[] = [];
  const figureRows: RgbImage[][] = [];
  const shown = Math.min(6, testImages);
  const scale = 3;
  const label = (text: string) => textImage(text, { scale: 2, width: 150, height: 64 * scale, pad: 4 });

  for (const name of which) {
    const t1 = performance.now();
    const train = syntheticDetection({ ...dataFor(name, seed), ...opts.data, seed });
    const test = syntheticDetection({ ...dataFor(name, seed), ...opts.data, seed: seed + 1000 });
    const categories = train.classNames.map((_, i) => i);
    const masks = name === 'maskrcnn';
    const offset = masks ? 1 : 0; // Mask R-CNN's class 0 is the background
    manualSeed(seed);
    const det =
      name === 'retinanet'
        ? buildRetinaNet(size, train.numClasses, opts.retinaNet, opts.retinaNetLevels)
        : buildMaskRcnn(size, train.numClasses);
    const testIdx = Array.from({ length: testImages }, (_, i) => i);
    const testSamples = testIdx.map((i) => test.sample(i));
    const gt = groundTruth(testSamples);
    const initialStats = cocoEvaluate(gt, predict(det, test, testIdx, offset, 16), { categories });

    const trainer = new Trainer<Batch>({
      model: det,
      lr: opts.lr ?? 3e-3,
      warmupSteps: Math.min(50, Math.floor(steps / 10)),
      totalSteps: steps,
      clipGradNorm: 10,
      seed,
      loss: (b) => tf.addN(Object.values(det.loss(b.images, b.targets))) as tf.Scalar,
    });
    const losses: number[] = [];
    trainer
      .fit(
        { size: trainImages, batch: (idx) => train.batch(idx, { labelOffset: offset, masks }) },
        {
          epochs: Math.ceil((steps * batchSize) / trainImages) + 1,
          batchSize,
          maxSteps: steps,
        },
      )
      .forEach((info) => losses.push(info.loss));
    trainer.dispose();
    const tenth = Math.max(1, Math.floor(steps / 10));
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const firstLoss = mean(losses.slice(0, tenth));
    const lastLoss = mean(losses.slice(-tenth));

    const preds = predict(det, test, testIdx, offset, 16);
    const stats = cocoEvaluate(gt, preds, { categories });
    const maskStats = masks
      ? cocoEvaluate(
          testSamples.map((t) => ({ boxes: t.boxes, labels: t.labels, masks: t.masks })),
          preds,
          { categories, iouType: 'segm' },
        )
      : undefined;
    const r: DetectorResult = {
      name: name === 'retinanet' ? 'RetinaNet (v2) on PVT v2 + FPN' : 'Mask R-CNN on ViTDet (plain ViT + simple feature pyramid)',
      stats,
      initialStats,
      ...(maskStats ? { maskStats } : {}),
      firstLoss,
      lastLoss,
      steps,
      parameters: count(det),
      seconds: (performance.now() - t1) / 1000,
    };
    log(
      `${r.name}: ${r.parameters} parameters, ${steps} steps, loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)}; held-out box AP ${(100 * stats.AP).toFixed(1)} (AP50 ${(100 * stats.AP50).toFixed(1)}, AP75 ${(100 * stats.AP75).toFixed(1)}, AR100 ${(100 * stats.AR100).toFixed(1)}), at the initial weights AP ${(100 * initialStats.AP).toFixed(1)}${maskStats ? `; mask AP ${(100 * maskStats.AP).toFixed(1)} (AP50 ${(100 * maskStats.AP50).toFixed(1)})` : ''}; ${r.seconds.toFixed(0)} s`,
    );
    if (opts.out) {
      r.dir = join(opts.out, name);
      mkdirSync(r.dir, { recursive: true });
      const classNames = masks ? ['background', ...train.classNames] : train.classNames;
      const files = serializeDetector(det, { classNames, mean: SHAPES_MEAN, std: SHAPES_STD });
      writeFileSync(join(r.dir, 'config.json'), files.config);
      writeFileSync(join(r.dir, 'model.safetensors'), files.weights);
      const row = [label(masks ? 'Mask R-CNN\nViTDet' : 'RetinaNet\nPVT v2')];
      const gtRow = [label('ground\ntruth')];
      for (let i = 0; i < shown; i++) {
        const p = preds[i];
        const keep = p.scores.map((s, j) => (s >= SHOW_SCORE ? j : -1)).filter((j) => j >= 0);
        row.push(
          drawDetections(
            testSamples[i],
            keep.map((j) => p.boxes[j]),
            keep.map((j) => p.labels[j]),
            p.masks ? keep.map((j) => p.masks![j]) : undefined,
            scale,
          ),
        );
        gtRow.push(drawDetections(testSamples[i], gt[i].boxes, gt[i].labels, masks ? testSamples[i].masks : undefined, scale));
      }
      figureRows.push(row, gtRow);
    }
    results.push(r);
    det.dispose();
  }
  let png: string | undefined;
  if (opts.out && figureRows.length) {
    const g = imageGrid(figureRows, { pad: 3 });
    png = join(opts.out, 'detection-predictions.png');
    writeFileSync(png, encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (d) => new Uint8Array(deflateSync(d)) }));
    writeFileSync(
      join(opts.out, 'results.json'),
      `${JSON.stringify({ results: results.map(({ dir: _d, ...r }) => r), testImages }, null, 2)}\n`,
    );
  }
  return { results, testImages, png, seconds: (performance.now() - t0) / 1000 };
}
