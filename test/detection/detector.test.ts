import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fpn } from '../../src/heads/fpn.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { fcos, maskRcnnHeads, retinaNet } from '../../src/heads/detection/index.js';
import { manualSeed } from '../../src/layers/init.js';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/pvtV2/index.js';
import '../../src/models/vitDet/index.js';
import { syntheticDetection } from '../../src/data/syntheticDetection.js';
import { VisBackbonesError } from '../../src/errors.js';
import { batchImages, Detector, detector, deserializeDetector, serializeDetector } from '../../src/tasks/detector.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { step, stepAndCheckGradients } from '../helpers/training.js';

const tinyPvt = () =>
  createModel('pvt_v2_b0', {
    featuresOnly: true,
    embedDims: [16, 16, 32, 32],
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 2, 2],
    outIndices: [1, 2, 3],
  });
const ratios = (n: number) => Array.from({ length: n }, () => [0.5, 1, 2]);

/** The three detectors at tiny sizes: RetinaNet and FCOS on PVT v2 + FPN, Mask R-CNN on ViTDet + simple feature pyramid. */
function tinyDetectors(): { name: string; det: Detector; masks: boolean; imageSize: [number, number] }[] {
  manualSeed(11); // every initialisation draws from the library's seeded generator
  const p1 = tinyPvt();
  const p2 = tinyPvt();
  const chs = (b: typeof p1) => b.outIndices.map((i) => b.featureInfo[i].numChs);
  const vit = createModel('samvit_base_patch16', {
    imgSize: 32,
    patchSize: 8,
    embedDim: 16,
    depth: 2,
    numHeads: 2,
    windowSize: 2,
    globalAttnIndexes: [1],
    neckChans: null,
    featuresOnly: true,
  });
  return [
    {
      name: 'RetinaNet v2 / PVT v2 + FPN',
      masks: false,
      imageSize: [40, 56],
      det: detector({
        backbone: p1,
        neck: fpn({ inChannels: chs(p1), outChans: 8 }),
        head: retinaNet({
          numClasses: 2,
          inChannels: 8,
          numGroups: 4,
          norm: 'group_norm',
          boxLoss: 'giou',
          anchorSizes: [[12], [24], [48]],
          aspectRatios: ratios(3),
        }),
      }),
    },
    {
      name: 'FCOS / PVT v2 + FPN',
      masks: false,
      imageSize: [40, 56],
      det: detector({
        backbone: p2,
        neck: fpn({ inChannels: chs(p2), outChans: 32 }),
        head: fcos({ numClasses: 2, inChannels: 32, numConvs: 1, anchorSizes: [8, 16, 32] }),
      }),
    },
    {
      name: 'Mask R-CNN / ViTDet + simple feature pyramid',
      masks: true,
      imageSize: [32, 32],
      det: detector({
        backbone: vit,
        neck: simpleFeaturePyramid({ inChans: 16, outChans: 8, scaleFactors: [2, 1, 0.5], inStride: 8, topBlock: true }),
        head: maskRcnnHeads({
          numClasses: 3,
          inChannels: 8,
          featureNames: ['0', '1', '2', 'pool'],
          roiFeatmapNames: ['0', '1', '2'],
          rpnAnchorSizes: [[8], [16], [32], [64]],
          rpnAspectRatios: ratios(4),
          rpnPreNmsTopNTrain: 60,
          rpnPostNmsTopNTrain: 30,
          rpnPreNmsTopNTest: 60,
          rpnPostNmsTopNTest: 30,
          rpnFgIouThresh: 0.5,
          rpnBgIouThresh: 0.3,
          rpnBatchSizePerImage: 32,
          boxBatchSizePerImage: 32,
          boxFgIouThresh: 0.3,
          boxBgIouThresh: 0.3,
          representationSize: 16,
          maskLayers: [8],
          maskDimReduced: 8,
          maskRoiOutputSize: 7,
          canonicalScale: 32,
          canonicalLevel: 3,
        }),
      }),
    },
  ];
}

for (const backend of BACKENDS) {
  describe(`detector composition on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('pads a list of images like GeneralizedRCNNTransform', () => {
      const ims = [tf.ones([50, 70, 3]) as tf.Tensor3D, tf.ones([65, 20, 3]) as tf.Tensor3D];
      const { batch, imageSizes } = batchImages(ims);
      expect(batch.shape).toEqual([2, 96, 96, 3]);
      expect(imageSizes).toEqual([
        [50, 70],
        [65, 20],
      ]);
      expect(tf.sum(batch).dataSync()[0]).toBe(3 * (50 * 70 + 65 * 20));
      tf.dispose([...ims, batch]);
    });

    it('pvt_v2 (small) + FPN + RetinaNet: detect() gives per-image detections inside each image, loss() is finite, no leak', () => {
      const backbone = createModel('pvt_v2_b0', {
        featuresOnly: true,
        embedDims: [16, 16, 32, 32],
        depths: [1, 1, 1, 1],
        numHeads: [1, 1, 2, 2],
      });
      const chs = backbone.featureInfo.map((f) => f.numChs);
      const neck = fpn({ inChannels: chs, outChans: 16, numOuts: 5 });
      const head = retinaNet({
        numClasses: 3,
        inChannels: 16,
        anchorSizes: [[8], [16], [32], [64], [128]],
        aspectRatios: Array.from({ length: 5 }, () => [0.5, 1, 2]),
        scoreThresh: 0,
        detectionsPerImg: 7,
      });
      const det = detector({ backbone, neck, head });
      const ims = [
        tf.randomUniform([60, 50, 3], 0, 1, 'float32', 1) as tf.Tensor3D,
        tf.randomUniform([40, 64, 3], 0, 1, 'float32', 2) as tf.Tensor3D,
      ];
      const targets = [
        { boxes: tf.tensor2d([[5, 5, 30, 40]]), labels: [1] },
        { boxes: tf.tensor2d([[10, 2, 60, 30]]), labels: [2] },
      ];
      const before = tf.memory().numTensors;
      const out = det.detect(ims);
      expect(out.length).toBe(2);
      out.forEach((d, i) => {
        expect(d.boxes.shape).toEqual([7, 4]);
        expect(d.labels.dtype).toBe('int32');
        const b = d.boxes.arraySync() as number[][];
        const [h, w] = [ims[i].shape[0], ims[i].shape[1]];
        for (const [x1, y1, x2, y2] of b) expect(x1 >= 0 && y1 >= 0 && x2 <= w && y2 <= h).toBe(true);
        const s = Array.from(d.scores.dataSync());
        expect(s).toEqual([...s].sort((a, c) => c - a));
        tf.dispose([d.boxes, d.scores, d.labels]);
      });
      const l = det.loss(ims, targets);
      expect(Number.isFinite(l.classification.dataSync()[0])).toBe(true);
      tf.dispose(Object.values(l));
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(targets.map((t) => t.boxes));
      det.dispose();
      tf.dispose(ims);
    });
  });

  describe(`detectors end to end on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('each detector trains on padded batches of synthetic images: every variable of backbone, neck and head gets a gradient, the loss falls, no leak', () => {
      for (const { name, det, masks, imageSize } of tinyDetectors()) {
        const data = syntheticDetection({
          minImageSize: Math.min(...imageSize),
          maxImageSize: Math.max(...imageSize),
          numClasses: 2,
          minObjectSize: 8,
          maxObjectSize: 20,
          seed: 3,
        });
        const { images, targets } = data.batch([0, 1], { labelOffset: masks ? 1 : 0, masks });
        // SAM's conv neck / final norm (backbone.neck.*) only feeds forwardFeatures / the classifier; the
        // simple feature pyramid takes the neck-free block output (as detectron2's ViTDet), so it is frozen
        for (const [n, p] of det.namedParameters()) if (n.startsWith('backbone.neck.')) p.trainable = false;
        const opt = tf.train.sgd(masks ? 0.005 : 0.01);
        const before = tf.memory().numTensors;
        // Mask R-CNN's second stage is trained on the RPN's proposals, which move as the RPN learns (its
        // box, class and mask losses are over other RoIs from step to step); the first stage's anchors and
        // targets are fixed, so what must fall there is the RPN's loss. One-stage losses fall as a whole.
        const watched = (parts: Record<string, tf.Scalar>) => (masks ? [parts.rpnObjectness, parts.rpnBoxReg] : Object.values(parts));
        const loss = () =>
          tf.tidy(() => {
            manualSeed(7); // the same RPN / RoI samples every step
            return tf.addN(Object.values(det.loss(images, targets))) as tf.Scalar;
          });
        const watchedLoss = () =>
          tf.tidy(() => {
            manualSeed(7);
            return tf.addN(watched(det.loss(images, targets))).dataSync()[0];
          });
        const w0 = watchedLoss();
        stepAndCheckGradients(det, loss, opt, { label: `${name} ${backend}` });
        for (let i = 0; i < 3; i++) step(det, loss, opt);
        expect(watchedLoss(), `${name} ${backend}: ${masks ? 'the RPN loss' : 'the loss'} falls`).toBeLessThan(w0);
        expect(tf.memory().numTensors, `${name} ${backend}: no leak`).toBe(before);
        opt.dispose();
        tf.dispose([...images, ...targets.flatMap((t) => (t.masks ? [t.boxes, t.masks] : [t.boxes]))]);
        det.dispose();
      }
    });

    it('serializeDetector / deserializeDetector rebuild the same detector (same detections, masks included)', () => {
      const dets = tinyDetectors();
      const { det } = dets[2];
      for (const d of dets.slice(0, 2)) d.det.dispose();
      const data = syntheticDetection({ imageSize: 32, numClasses: 2, minObjectSize: 8, maxObjectSize: 20 });
      const { images, targets } = data.batch([5]);
      const files = serializeDetector(det, {
        classNames: ['background', 'circle', 'square'],
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.25, 0.25],
      });
      const { detector: back, spec } = deserializeDetector(files.config, files.weights);
      expect(spec.neck?.type).toBe('simpleFeaturePyramid');
      expect(spec.head.type).toBe('maskrcnn');
      expect(spec.classNames).toEqual(['background', 'circle', 'square']);
      const [a] = det.detect(images);
      const [b] = back.detect(images);
      expect(a.scores.shape[0]).toBeGreaterThan(0);
      for (const k of ['boxes', 'scores', 'labels', 'masks'] as const)
        expect(Array.from(b[k]!.dataSync()), k).toEqual(Array.from(a[k]!.dataSync()));
      tf.dispose([...[a, b].flatMap((d) => [d.boxes, d.scores, d.labels, d.masks!]), ...images, ...targets.map((t) => t.boxes)]);
      expect(() => deserializeDetector('{"format": "other"}', files.weights)).toThrow(VisBackbonesError);
      expect(() => deserializeDetector('not json', files.weights)).toThrow(VisBackbonesError);
      const bad = JSON.parse(files.config);
      bad.head.config.representationSize = 8;
      expect(() => deserializeDetector(JSON.stringify(bad), files.weights)).toThrow(VisBackbonesError);
      det.dispose();
      back.dispose();
    });
  });
}
