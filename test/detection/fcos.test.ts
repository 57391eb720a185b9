import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fcos, FcosConfig } from '../../src/heads/detection/index.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectClose, expectSameBytes, fixtureFeatures, fixtureTargets, parityLog } from './detHelpers.js';

for (const backend of BACKENDS) {
  describe(`fcos_head fixture on ${backend}`, () => {
    let fx: Fixture;
    let feats: tf.Tensor4D[];
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('fcos_head');
      feats = fixtureFeatures(fx);
    });
    afterAll(() => {
      tf.dispose(feats);
      fx.dispose();
      console.log(`fcos_head ${backend}`, JSON.stringify(parityLog));
    });

    it('head outputs, anchors, matching, centerness targets, losses and detections', () => {
      const head = fcos(fx.case.config as FcosConfig);
      const sd = readSafetensors(fx.weightsBytes!);
      head.loadStateDict(sd);
      const sizes = fx.case.image_sizes as [number, number][];
      const fs = feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]);
      const targets = fixtureTargets(fx);
      const before = tf.memory().numTensors;
      const out = head.forward(feats);
      expectClose(fx, 'cls_logits', out.clsLogits);
      expectClose(fx, 'bbox_regression', out.bboxRegression);
      expectClose(fx, 'bbox_ctrness', out.bboxCtrness);
      const anchors = head.anchors(feats, sizes);
      expectClose(fx, 'anchors', anchors);
      const m = head.matchAnchors(anchors, targets, fs);
      m.forEach((t, i) => expectClose(fx, `matched_idxs.${i}`, t));
      const ct = head.ctrnessTargets(anchors, targets, fs);
      ct.forEach((t, i) => expectClose(fx, `ctrness_targets.${i}`, t));
      const l = head.computeLoss(out, anchors, targets, fs);
      expectClose(fx, 'loss.classification', l.classification);
      expectClose(fx, 'loss.bbox_regression', l.bboxRegression);
      expectClose(fx, 'loss.bbox_ctrness', l.bboxCtrness);
      const dets = head.postprocess(out, anchors, sizes, fs);
      dets.forEach((d, i) => {
        expectClose(fx, `detections.${i}.boxes`, d.boxes);
        expectClose(fx, `detections.${i}.scores`, d.scores);
        expectClose(fx, `detections.${i}.labels`, d.labels);
      });
      const full = head.loss(feats, targets, sizes);
      expect(full.bboxCtrness.dataSync()[0]).toBeCloseTo(l.bboxCtrness.dataSync()[0], 5);
      const det2 = head.detect(feats, sizes);
      expect(Array.from(det2[1].labels.dataSync())).toEqual(Array.from(dets[1].labels.dataSync()));
      tf.dispose([out.clsLogits, out.bboxRegression, out.bboxCtrness, anchors, ...m, ...ct, ...Object.values(l), ...Object.values(full)]);
      for (const d of [...dets, ...det2]) tf.dispose([d.boxes, d.scores, d.labels]);
      expect(tf.memory().numTensors).toBe(before);
      const back = head.stateDict();
      expectSameBytes(writeSafetensors(back), writeSafetensors(sd), 'state dict round trip');
      tf.dispose([...Object.values(back), ...Object.values(sd)]);
      head.dispose();
    });
  });
}

describe('fcos config checks', () => {
  it('GroupNorm(32) needs inChannels divisible by 32; fresh init as torchvision', async () => {
    await useBackend('cpu');
    expect(() => fcos({ numClasses: 3, inChannels: 48 })).toThrow(VisBackbonesError);
    const head = fcos({ numClasses: 3, inChannels: 32, numConvs: 1 });
    const sd = head.stateDict();
    expect(Object.keys(sd).sort()).toEqual([
      'head.classification_head.cls_logits.bias',
      'head.classification_head.cls_logits.weight',
      'head.classification_head.conv.0.bias',
      'head.classification_head.conv.0.weight',
      'head.classification_head.conv.1.bias',
      'head.classification_head.conv.1.weight',
      'head.regression_head.bbox_ctrness.bias',
      'head.regression_head.bbox_ctrness.weight',
      'head.regression_head.bbox_reg.bias',
      'head.regression_head.bbox_reg.weight',
      'head.regression_head.conv.0.bias',
      'head.regression_head.conv.0.weight',
      'head.regression_head.conv.1.bias',
      'head.regression_head.conv.1.weight',
    ]);
    expect(sd['head.classification_head.cls_logits.bias'].dataSync()[0]).toBeCloseTo(-4.59512, 4);
    tf.dispose(Object.values(sd));
    head.dispose();
  });
});
