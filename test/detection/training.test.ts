import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDetectionHead, fcos, listDetectionHeads, maskRcnnHeads, retinaNet } from '../../src/heads/detection/index.js';
import type { Module } from '../../src/layers/module.js';
import { manualSeed } from '../../src/layers/init.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { step, stepAndCheckGradients } from '../helpers/training.js';

/** Two images of 60x50 and 48x64 in a 64x64 padded batch, levels at strides 8 and 16. */
function scene(c: number, strides = [8, 16]) {
  const feats = strides.map((s, i) => tf.randomNormal([2, 64 / s, 64 / s, c], 0, 1, 'float32', 3 + i) as tf.Tensor4D);
  const targets = [
    {
      boxes: tf.tensor2d([
        [4, 6, 30, 40],
        [20, 10, 50, 30],
      ]),
      labels: [1, 2],
      masks: tf.tidy(() =>
        tf
          .pad(tf.ones([30, 30]), [
            [8, 22],
            [6, 14],
          ])
          .expandDims(0)
          .tile([2, 1, 1]),
      ) as tf.Tensor3D,
    },
    {
      boxes: tf.tensor2d([[10, 12, 40, 44]]),
      labels: [1],
      masks: tf.tidy(() =>
        tf
          .pad(tf.ones([30, 30]), [
            [12, 6],
            [10, 24],
          ])
          .expandDims(0),
      ) as tf.Tensor3D,
    },
  ];
  const sizes: [number, number][] = [
    [60, 50],
    [48, 64],
  ];
  return { feats, targets, sizes, dispose: () => tf.dispose([...feats, ...targets.flatMap((t) => [t.boxes, t.masks])]) };
}

function checkTraining(m: Module, lossFn: () => tf.Scalar, label: string, lr = 0.01): void {
  const opt = tf.train.sgd(lr);
  const before = tf.memory().numTensors;
  const l0 = stepAndCheckGradients(m, lossFn, opt, { label });
  let last = l0;
  for (let i = 0; i < 3; i++) last = step(m, lossFn, opt);
  expect(last, `${label}: loss falls`).toBeLessThan(l0);
  expect(tf.memory().numTensors, `${label}: no leak`).toBe(before);
  opt.dispose();
}

for (const backend of BACKENDS) {
  describe(`detection head training on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('RetinaNet v1 / v2: every variable gets a gradient, loss falls, no leak', () => {
      for (const norm of ['none', 'group_norm'] as const) {
        const s = scene(8);
        const head = retinaNet({
          numClasses: 3,
          inChannels: 8,
          numGroups: 4,
          norm,
          boxLoss: norm === 'none' ? 'l1' : 'giou',
          anchorSizes: [[16], [32]],
          aspectRatios: [
            [0.5, 1, 2],
            [0.5, 1, 2],
          ],
        });
        checkTraining(
          head,
          () =>
            tf.tidy(() => {
              const l = head.loss(s.feats, s.targets, s.sizes);
              return tf.add(l.classification, l.bboxRegression) as tf.Scalar;
            }),
          `retinaNet ${norm} ${backend}`,
        );
        head.dispose();
        s.dispose();
      }
    });

    it('FCOS: every variable gets a gradient, loss falls, no leak', () => {
      const s = scene(32);
      const head = fcos({ numClasses: 3, inChannels: 32, numConvs: 1, anchorSizes: [8, 16] });
      checkTraining(
        head,
        () =>
          tf.tidy(() => {
            const l = head.loss(s.feats, s.targets, s.sizes);
            return tf.addN([l.classification, l.bboxRegression, l.bboxCtrness]) as tf.Scalar;
          }),
        `fcos ${backend}`,
      );
      head.dispose();
      s.dispose();
    });

    it('Mask R-CNN heads: every variable gets a gradient, loss falls, no leak', () => {
      const s = scene(8, [4, 8]);
      manualSeed(1); // the heads' initialisation is seeded (the library's generator)
      const heads = maskRcnnHeads({
        numClasses: 3,
        inChannels: 8,
        rpnAnchorSizes: [[16], [32]],
        rpnAspectRatios: [
          [0.5, 1, 2],
          [0.5, 1, 2],
        ],
        featureNames: ['0', '1'],
        roiFeatmapNames: ['0', '1'],
        rpnPreNmsTopNTrain: 50,
        rpnPostNmsTopNTrain: 30,
        rpnBatchSizePerImage: 32,
        boxBatchSizePerImage: 1000,
        representationSize: 16,
        maskLayers: [8],
        maskDimReduced: 8,
        canonicalScale: 32,
        rpnFgIouThresh: 0.5,
        rpnBgIouThresh: 0.3,
      });
      // fixed sampler picks, so every step sees the same samples
      const a = heads.rpn.anchors(s.feats, s.sizes);
      const at = heads.rpn.assignTargets(a, s.targets);
      const lab = at.labels.map((l) => Array.from(l.dataSync()));
      const sampledPos = lab.map((l) => l.map((v, i) => (v === 1 ? i : -1)).filter((i) => i >= 0));
      const sampledNeg = lab.map((l) =>
        l
          .map((v, i) => (v === 0 ? i : -1))
          .filter((i) => i >= 0)
          .slice(0, 20),
      );
      tf.dispose([a, ...at.labels, ...at.matchedGtBoxes]);
      expect(sampledPos.every((p) => p.length > 0)).toBe(true);
      const loss = () =>
        tf.tidy(() => {
          manualSeed(5); // the samplers take every RoI (batch 1000), the seed fixes their order
          return tf.addN(Object.values(heads.loss(s.feats, s.targets, s.sizes, { sampledPos, sampledNeg }))) as tf.Scalar;
        });
      checkTraining(heads, loss, `maskRcnn ${backend}`);
      heads.dispose();
      s.dispose();
    });
  });
}

describe('named detection heads', () => {
  it('builds torchvision’s head configurations', async () => {
    await useBackend('cpu');
    expect(listDetectionHeads()).toEqual([
      'retinanet_resnet50_fpn',
      'retinanet_resnet50_fpn_v2',
      'fcos_resnet50_fpn',
      'maskrcnn_resnet50_fpn',
    ]);
    const r = createDetectionHead('retinanet_resnet50_fpn') as ReturnType<typeof retinaNet>;
    expect(r.cfg.anchorSizes[0]).toEqual([32, 40, 50]);
    expect(r.numAnchors).toBe(9);
    r.dispose();
    const v2 = createDetectionHead('retinanet_resnet50_fpn_v2') as ReturnType<typeof retinaNet>;
    expect(v2.cfg.norm).toBe('group_norm');
    expect(Object.keys(Object.fromEntries(v2.namedParameters()))).toContain('head.classification_head.conv.0.1.weight');
    v2.dispose();
    expect(() => createDetectionHead('yolo')).toThrow();
  });
});
