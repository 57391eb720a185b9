import * as tf from '@tensorflow/tfjs';
import { fpn } from '../../src/heads/fpn.js';
import { createDetectionHead, RetinaNetHead } from '../../src/heads/detection/index.js';
import '../../src/models/pvtV2/index.js';
import { createModel } from '../../src/models/registry.js';
import { detector } from '../../src/tasks/detector.js';
import type { BenchSuite } from '../harness.js';

/**
 * RetinaNet (torchvision's v1 head, 91 classes, 9 anchors) on pvt_v2_b0 + FPN at 512 px, laid out as
 * torchvision's `retinanet_resnet50_fpn`: P3-P5 from the stride 8 / 16 / 32 stages, P6 and P7 by 3x3
 * stride-2 convs on P5 (ReLU before P7). Rows: `detect()` (forward + postprocess) and the share of it
 * spent in postprocess (top-k, decoding, batched NMS). Batched NMS and RoIAlign alone: suite `16-detection-ops`.
 */
const suite: BenchSuite = {
  name: 'retinanet_pvt_v2_b0_512',
  async run(ctx) {
    const backbone = createModel('pvt_v2_b0', { featuresOnly: true, outIndices: [1, 2, 3] });
    const neck = fpn({
      inChannels: backbone.outIndices.map((i) => backbone.featureInfo[i].numChs),
      outChans: 256,
      numOuts: 5,
      addExtraConvs: 'on_output',
      reluBeforeExtraConvs: true,
    });
    const head = createDetectionHead('retinanet_resnet50_fpn') as RetinaNetHead;
    const det = detector({ backbone, neck, head });
    const probe = tf.zeros([1, 512, 512, 3]) as tf.Tensor4D;
    const flops = await ctx.countFlops(() => {
      const f = det.features(probe);
      const o = head.forward(f);
      tf.dispose(f);
      return [o.clsLogits, o.bboxRegression];
    });
    probe.dispose();
    for (const b of ctx.batches) {
      const x = tf.randomNormal([b, 512, 512, 3]) as tf.Tensor4D;
      const sizes = Array.from({ length: b }, () => [512, 512] as [number, number]);
      const total = ctx.time(() => det.detect(x).forEach((d) => tf.dispose([d.boxes, d.scores, d.labels])), 2, 1);
      const feats = det.features(x);
      const out = head.forward(feats);
      const anchors = head.anchors(feats, sizes);
      const fs = feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]);
      const post = ctx.time(
        () => head.postprocess(out, anchors, sizes, fs).forEach((d) => tf.dispose([d.boxes, d.scores, d.labels])),
        2,
        1,
      );
      tf.dispose([x, ...feats, out.clsLogits, out.bboxRegression, anchors]);
      ctx.report({
        name: 'retinanet pvt_v2_b0 fpn 512 detect',
        batch: b,
        imgsPerSec: b / total,
        gflopPerImg: flops / 1e9,
        note: `postprocess ${(1000 * post).toFixed(0)} ms = ${((100 * post) / total).toFixed(1)}% of detect`,
      });
    }
    det.dispose();
  },
};

export default suite;
