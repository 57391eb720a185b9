import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskRcnnHeads, MaskRcnnConfig } from '../../src/heads/detection/index.js';
import { pasteMasksInImage, projectMasksOnBoxes } from '../../src/layers/detection/index.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectClose, expectSameBytes, fixtureFeatures, fixtureTargets, parityLog } from './detHelpers.js';

const nchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);

for (const backend of BACKENDS) {
  describe(`maskrcnn_heads fixture on ${backend}`, () => {
    let fx: Fixture;
    let feats: tf.Tensor4D[];
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('maskrcnn_heads');
      feats = fixtureFeatures(fx);
    });
    afterAll(() => {
      tf.dispose(feats);
      fx.dispose();
      console.log(`maskrcnn_heads ${backend}`, JSON.stringify(parityLog));
    });

    it('RPN, RoI sampling, box and mask branches, losses, detections with pasted masks', () => {
      const heads = maskRcnnHeads(fx.case.config as MaskRcnnConfig);
      const sd = readSafetensors(fx.weightsBytes!);
      heads.loadStateDict(sd);
      const io = fx.io;
      const sizes = fx.case.image_sizes as [number, number][];
      const fs = feats.map((f) => [f.shape[1], f.shape[2]] as [number, number]);
      const targets = fixtureTargets(fx, 2, true);
      const pick = (n: string) => [0, 1].map((i) => io[`${n}.${i}`] as tf.Tensor1D);
      const before = tf.memory().numTensors;
      const keep: tf.Tensor[] = [];
      const k = <T extends tf.Tensor>(t: T) => (keep.push(t), t);

      // RPN
      const rpn = heads.rpn.forward(feats);
      keep.push(rpn.objectness, rpn.bboxDeltas);
      expectClose(fx, 'rpn.objectness', rpn.objectness);
      expectClose(fx, 'rpn.bbox_deltas', rpn.bboxDeltas);
      const anchors = k(heads.rpn.anchors(feats, sizes));
      expectClose(fx, 'rpn.anchors', anchors);
      const at = heads.rpn.assignTargets(anchors, targets);
      keep.push(...at.labels, ...at.matchedGtBoxes);
      at.labels.forEach((l, i) => expectClose(fx, `rpn.labels.${i}`, l));
      const rl = heads.rpn.computeLoss(rpn.objectness, rpn.bboxDeltas, anchors, targets, {
        sampledPos: pick('rpn.sampled_pos'),
        sampledNeg: pick('rpn.sampled_neg'),
      });
      keep.push(rl.objectness, rl.boxReg);
      expectClose(fx, 'loss.rpn_objectness', rl.objectness);
      expectClose(fx, 'loss.rpn_box_reg', rl.boxReg);
      for (const mode of ['train', 'eval'] as const) {
        const p = heads.rpn.filterProposals(rpn.objectness, rpn.bboxDeltas, anchors, sizes, fs, { training: mode === 'train' });
        keep.push(...p.boxes, ...p.scores);
        p.boxes.forEach((b, i) => expectClose(fx, `rpn.${mode}.proposals.${i}`, b));
        p.scores.forEach((s, i) => expectClose(fx, `rpn.${mode}.scores.${i}`, s));
      }

      // RoI heads, training
      const trainProps = [0, 1].map((i) => io[`rpn.train.proposals.${i}`] as tf.Tensor2D);
      const sampledInds = pick('roi.sampled_inds');
      const s = heads.roiHeads.selectTrainingSamples(trainProps, targets, { sampledInds });
      keep.push(...s.proposals, ...s.matchedIdxs, ...s.labels, ...s.regressionTargets);
      [0, 1].forEach((i) => {
        expectClose(fx, `roi.sampled_proposals.${i}`, s.proposals[i]);
        expectClose(fx, `roi.labels.${i}`, s.labels[i]);
        expectClose(fx, `roi.matched_idxs.${i}`, s.matchedIdxs[i]);
        const pos = Array.from(s.labels[i].dataSync())
          .map((v, j) => (v > 0 ? j : -1))
          .filter((j) => j >= 0);
        expectClose(fx, `roi.pos_regression_targets.${i}`, k(tf.gather(s.regressionTargets[i], pos)));
      });
      const tb = heads.roiHeads.boxForward(feats, s.proposals, sizes);
      keep.push(tb.boxFeatures, tb.classLogits, tb.boxRegression);
      expectClose(fx, 'roi.train.class_logits', tb.classLogits);
      expectClose(fx, 'roi.train.box_regression', tb.boxRegression);
      const posBoxes = [0, 1].map(
        (i) =>
          k(
            tf.gather(
              s.proposals[i],
              Array.from(s.labels[i].dataSync())
                .map((v, j) => (v > 0 ? j : -1))
                .filter((j) => j >= 0),
            ),
          ) as tf.Tensor2D,
      );
      const ml = k(heads.roiHeads.maskForward(feats, posBoxes, sizes));
      expectClose(fx, 'roi.train.mask_logits', k(nchw(ml)));
      const mt = [0, 1].map((i) => {
        const lab = Array.from(s.labels[i].dataSync());
        const mi = Array.from(s.matchedIdxs[i].dataSync()).filter((_, j) => lab[j] > 0);
        return k(projectMasksOnBoxes(targets[i].masks!, posBoxes[i], mi, 28));
      });
      expectClose(fx, 'roi.train.mask_targets', k(tf.concat(mt, 0)));
      const roiL = heads.roiHeads.computeLoss(feats, trainProps, sizes, targets, { sampledInds });
      keep.push(roiL.classifier, roiL.boxReg, roiL.mask);
      expectClose(fx, 'loss.classifier', roiL.classifier);
      expectClose(fx, 'loss.box_reg', roiL.boxReg);
      expectClose(fx, 'loss.mask', roiL.mask);

      // RoI heads, inference
      const evalProps = [0, 1].map((i) => io[`rpn.eval.proposals.${i}`] as tf.Tensor2D);
      const eb = heads.roiHeads.boxForward(feats, evalProps, sizes);
      keep.push(eb.boxFeatures, eb.classLogits, eb.boxRegression);
      expectClose(fx, 'roi.eval.box_features', k(nchw(eb.boxFeatures)));
      expectClose(fx, 'roi.eval.class_logits', eb.classLogits);
      expectClose(fx, 'roi.eval.box_regression', eb.boxRegression);
      const dets = heads.roiHeads.postprocessDetections(eb.classLogits, eb.boxRegression, evalProps, sizes);
      dets.forEach((d, i) => {
        keep.push(d.boxes, d.scores, d.labels);
        expectClose(fx, `detections.${i}.boxes`, d.boxes);
        expectClose(fx, `detections.${i}.scores`, d.scores);
        expectClose(fx, `detections.${i}.labels`, d.labels);
      });
      const dm = k(
        heads.roiHeads.maskForward(
          feats,
          dets.map((d) => d.boxes),
          sizes,
        ),
      );
      expectClose(fx, 'roi.eval.mask_logits', k(nchw(dm)));
      const probs = heads.roiHeads.maskInference(
        dm,
        dets.map((d) => d.labels),
      );
      keep.push(...probs);
      probs.forEach((p, i) => {
        expectClose(fx, `detections.${i}.mask_probs`, p);
        expectClose(fx, `detections.${i}.masks`, k(pasteMasksInImage(p, dets[i].boxes, sizes[i])));
      });

      // the composed calls
      const all = heads.loss(feats, targets, sizes, {
        sampledPos: pick('rpn.sampled_pos'),
        sampledNeg: pick('rpn.sampled_neg'),
        sampledInds,
      });
      keep.push(...Object.values(all));
      expectClose(fx, 'loss.rpn_objectness', all.rpnObjectness);
      expectClose(fx, 'loss.rpn_box_reg', all.rpnBoxReg);
      expectClose(fx, 'loss.classifier', all.classifier);
      expectClose(fx, 'loss.box_reg', all.boxReg);
      expectClose(fx, 'loss.mask', all.mask);
      const full = heads.detect(feats, sizes);
      full.forEach((d, i) => {
        keep.push(d.boxes, d.scores, d.labels, d.masks!);
        expectClose(fx, `detections.${i}.boxes`, d.boxes);
        expectClose(fx, `detections.${i}.masks`, d.masks!);
      });
      tf.dispose(keep);
      expect(tf.memory().numTensors).toBe(before);
      const back = heads.stateDict();
      expectSameBytes(writeSafetensors(back), writeSafetensors(sd), 'state dict round trip');
      tf.dispose([...Object.values(back), ...Object.values(sd)]);
      heads.dispose();
    });
  });
}

describe('maskRcnnHeads checkpoints and errors', () => {
  it('renames version-1 keys and rejects bad input', async () => {
    await useBackend('cpu');
    const fx = loadFixture('maskrcnn_heads');
    const sd = readSafetensors(fx.weightsBytes!);
    const old: Record<string, tf.Tensor> = {};
    for (const [key, v] of Object.entries(sd)) {
      old[
        key.replace('rpn.head.conv.0.0.', 'rpn.head.conv.').replace(/mask_head\.(\d)\.0\./, (_, i) => `mask_head.mask_fcn${Number(i) + 1}.`)
      ] = v;
    }
    const heads = maskRcnnHeads(fx.case.config);
    const r = heads.loadStateDict(old);
    expect(r.loaded.length).toBe(Object.keys(sd).length);
    expect(() => maskRcnnHeads({ ...fx.case.config, numClasses: 1 })).toThrow(VisBackbonesError);
    const feats = fixtureFeatures(fx);
    expect(() => heads.loss(feats, fixtureTargets(fx, 2, false), fx.case.image_sizes)).toThrow(VisBackbonesError);
    tf.dispose([...feats, ...Object.values(sd)]);
    heads.dispose();
    fx.dispose();
  });
});
