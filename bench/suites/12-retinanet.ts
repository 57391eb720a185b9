import * as tf from '@tensorflow/tfjs';
import { fpn } from '../../src/heads/fpn.js';
import { createDetectionHead, RetinaNetHead } from '../../src/heads/detection/index.js';
import '../../src/models/pvtV2/index.js';
import { createModel } from '../../src/models/registry.js';
import { detector } from '../../src/tasks/detector.js';
import type { BenchSuite } from '../harness.js';

/** RetinaNet (torchvision's v1 head, 91 classes) on pvt_v2_b0 + FPN at 512 px; the share of time spent in postprocess. */
const suite: BenchSuite = {
  name: 'retinanet_pvt_v2_b0_512',
  async run(ctx) {
    const backbone = createModel('pvt_v2_b0', { featuresOnly: true });
    const neck = fpn({ inChannels: backbone.featureInfo.map((f) => f.numChs), outChans: 256, numOuts: 5 });
    const head = createDetectionHead('retinanet_resnet50_fpn') as RetinaNetHead;
    const det = detector({ backbone, neck, head });
    for (const b of ctx.batches) {
      const x = tf.randomNormal([b, 512, 512, 3]) as tf.Tensor4D;
      const sizes = Array.from({ length: b }, () => [512, 512] as [number, number]);
      const total = ctx.time(() => det.detect(x).forEach((d) => tf.dispose([d.boxes, d.scores, d.labels])));
      const feats = det.features(x);
      const out = head.forward(feats);
      const anchors = head.anchors(feats, sizes);
      const fs = feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]);
      const post = ctx.time(() => head.postprocess(out, anchors, sizes, fs).forEach((d) => tf.dispose([d.boxes, d.scores, d.labels])));
      tf.dispose([x, ...feats, out.clsLogits, out.bboxRegression, anchors]);
      ctx.report({
        name: 'retinanet pvt_v2_b0 fpn 512',
        batch: b,
        imgsPerSec: b / total,
        note: `postprocess ${((100 * post) / total).toFixed(1)}% of the time`,
      });
    }
    det.dispose();
  },
};

export default suite;
