import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fpn } from '../../src/heads/fpn.js';
import { retinaNet } from '../../src/heads/detection/index.js';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/pvtV2/index.js';
import { batchImages, detector } from '../../src/tasks/detector.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

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

    it('pvt_v2_b0 + FPN + RetinaNet: detect() gives per-image detections inside each image, loss() is finite, no leak', () => {
      const backbone = createModel('pvt_v2_b0', { featuresOnly: true });
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
}
