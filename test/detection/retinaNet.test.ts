import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retinaNet, RetinaNetConfig } from '../../src/heads/detection/index.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectClose, expectSameBytes, fixtureFeatures, fixtureTargets, parityLog } from './detHelpers.js';

for (const caseName of ['retinanet_head', 'retinanet_head_gn']) {
  for (const backend of BACKENDS) {
    describe(`${caseName} fixture on ${backend}`, () => {
      let fx: Fixture;
      let feats: tf.Tensor4D[];
      beforeAll(async () => {
        await useBackend(backend);
        fx = loadFixture(caseName);
        feats = fixtureFeatures(fx);
      });
      afterAll(() => {
        tf.dispose(feats);
        fx.dispose();
        console.log(`${caseName} ${backend}`, JSON.stringify(parityLog));
      });

      it('head outputs, anchors, matching, every loss and detections', () => {
        const head = retinaNet(fx.case.config as RetinaNetConfig);
        const sd = readSafetensors(fx.weightsBytes!);
        head.loadStateDict(sd);
        const sizes = fx.case.image_sizes as [number, number][];
        const targets = fixtureTargets(fx);
        const before = tf.memory().numTensors;
        const out = head.forward(feats);
        expectClose(fx, 'cls_logits', out.clsLogits);
        expectClose(fx, 'bbox_regression', out.bboxRegression);
        const anchors = head.anchors(feats, sizes);
        expectClose(fx, 'anchors', anchors);
        const pad = head.anchors(
          feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]),
          sizes,
          { paddedSize: fx.case.padded_size },
        );
        expectClose(fx, 'anchors', pad);
        const m = head.matchAnchors(anchors, targets);
        m.forEach((t, i) => expectClose(fx, `matched_idxs.${i}`, t));
        const l = head.computeLoss(out, anchors, targets);
        expectClose(fx, 'loss.classification', l.classification);
        expectClose(fx, 'loss.bbox_regression', l.bboxRegression);
        for (const type of ['l1', 'smooth_l1', 'giou'] as const) {
          const lt = head.computeLoss(out, anchors, targets, { boxLoss: type });
          expectClose(fx, `loss.bbox_regression.${type}`, lt.bboxRegression);
          tf.dispose([lt.classification, lt.bboxRegression]);
        }
        const dets = head.postprocess(
          out,
          anchors,
          sizes,
          feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]),
        );
        dets.forEach((d, i) => {
          expectClose(fx, `detections.${i}.boxes`, d.boxes);
          expectClose(fx, `detections.${i}.scores`, d.scores);
          expectClose(fx, `detections.${i}.labels`, d.labels);
        });
        const full = head.loss(feats, targets, sizes);
        expect(full.classification.dataSync()[0]).toBeCloseTo(l.classification.dataSync()[0], 5);
        const det2 = head.detect(feats, sizes);
        expect(Array.from(det2[0].labels.dataSync())).toEqual(Array.from(dets[0].labels.dataSync()));
        tf.dispose([
          out.clsLogits,
          out.bboxRegression,
          anchors,
          pad,
          ...m,
          l.classification,
          l.bboxRegression,
          full.classification,
          full.bboxRegression,
        ]);
        for (const d of [...dets, ...det2]) tf.dispose([d.boxes, d.scores, d.labels]);
        expect(tf.memory().numTensors).toBe(before);
        // state dict round trip: torchvision keys and layouts, byte-identical
        const back = head.stateDict();
        expect(Object.keys(back).sort()).toEqual(Object.keys(sd).sort());
        expectSameBytes(writeSafetensors(back), writeSafetensors(sd), 'state dict round trip');
        tf.dispose([...Object.values(back), ...Object.values(sd)]);
        head.dispose();
      });

      it('fresh head is initialised as torchvision (prior bias, N(0, 0.01) weights)', () => {
        const head = retinaNet(fx.case.config as RetinaNetConfig);
        const sd = head.stateDict();
        const bias = sd['head.classification_head.cls_logits.bias'].dataSync();
        expect(bias[0]).toBeCloseTo(fx.case.init['head.classification_head.cls_logits.bias'], 5);
        const w = sd['head.regression_head.bbox_reg.weight'];
        const std = tf.tidy(() => tf.moments(w).variance.sqrt().dataSync()[0]);
        expect(std).toBeGreaterThan(0.008);
        expect(std).toBeLessThan(0.012);
        expect(Array.from(sd['head.regression_head.bbox_reg.bias'].dataSync()).every((v) => v === 0)).toBe(true);
        tf.dispose(Object.values(sd));
        head.dispose();
      });
    });
  }
}

describe('retinaNet checkpoints and errors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  it('loads version-1 tower names (conv.{2i}) and rejects bad configs', () => {
    const fx = loadFixture('retinanet_head');
    const sd = readSafetensors(fx.weightsBytes!);
    const old: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(sd)) old[k.replace(/conv\.(\d)\.0\./, (_, i) => `conv.${2 * Number(i)}.`)] = v;
    old['backbone.body.conv1.weight'] = tf.zeros([1]);
    const head = retinaNet(fx.case.config);
    const r = head.loadStateDict(old, { strict: false });
    expect(r.missing).toEqual([]);
    expect(r.unexpected).toEqual(['backbone.body.conv1.weight']);
    const a = head.stateDict();
    expect(Array.from(a['head.classification_head.conv.3.0.weight'].dataSync())).toEqual(
      Array.from(sd['head.classification_head.conv.3.0.weight'].dataSync()),
    );
    tf.dispose([...Object.values(a), ...Object.values(sd), old['backbone.body.conv1.weight']]);
    head.dispose();
    fx.dispose();
    expect(() => retinaNet({ ...fx.case.config, norm: 'batch' })).toThrow(VisBackbonesError);
    expect(() => retinaNet({ ...fx.case.config, numClasses: 0 })).toThrow(VisBackbonesError);
  });
});
