/**
 * Every head x every backbone family, at two input sizes, attached with `attach`: output shapes and
 * strides checked against the backbone's `featureInfo` (and the pyramid's declared strides), no tensor
 * leaked by a forward. Plain backbones (ViT, ViTDet) feed the multi-level heads through a simple
 * feature pyramid neck, as ViTDet does.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fpn } from '../../src/heads/fpn.js';
import { segmentationHead } from '../../src/heads/segmentationHead.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { classifierHead, normMlpClassifierHead } from '../../src/layers/classifier.js';
import type { Module } from '../../src/layers/module.js';
import type { Backbone } from '../../src/models/backbone.js';
import { attach } from '../../src/tasks/attach.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { FAMILIES, SIZES } from '../helpers/families.js';

/** Run an attached model, check that nothing leaks, return the output (caller disposes). */
function run(m: Module, x: tf.Tensor): tf.Tensor | tf.Tensor[] {
  const before = tf.memory().numTensors;
  const y = m.forward(x) as tf.Tensor | tf.Tensor[];
  const outs = Array.isArray(y) ? y : [y];
  expect(tf.memory().numTensors).toBe(before + outs.length);
  return y;
}

/** Dispose what `attach` added on top of a shared backbone (head, neck), keeping the backbone. */
function release(...parts: (Module | null | undefined)[]): void {
  for (const p of parts) p?.dispose();
}

for (const backend of BACKENDS) {
  describe(`every head on every backbone family (${backend})`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const fam of FAMILIES) {
      for (const s of SIZES) {
        it(`${fam.name} at ${s}x${s}: classifier, norm-MLP classifier, simple feature pyramid, FPN, UPerNet, segmentation head`, () => {
          const b: Backbone = fam.build(s);
          const info = b.featureInfo;
          const x = tf.randomNormal([2, s, s, 3], 0, 1, 'float32', 1);
          const maps = b.forwardIntermediates(x, { intermediatesOnly: true });
          // the backbone's own levels agree with featureInfo
          maps.forEach((m, i) =>
            expect([m.shape[1], m.shape[2], m.shape[3]], `${fam.name} level ${i}`).toEqual([
              Math.ceil(s / info[i].reduction),
              Math.ceil(s / info[i].reduction),
              info[i].numChs,
            ]),
          );
          tf.dispose(maps);

          // classifiers on forwardFeatures
          for (const head of [
            classifierHead({ inChans: b.numFeatures, numClasses: 5, poolType: fam.name === 'vit' ? 'token' : 'avg' }),
            normMlpClassifierHead({ inChans: b.numFeatures, numClasses: 5, hiddenSize: 6 }),
          ]) {
            const y = run(attach(b, head), x) as tf.Tensor;
            expect(y.shape).toEqual([2, 5]);
            y.dispose();
            release(head);
          }

          // simple feature pyramid on the stride-16 level
          const at16 = info
            .map((l, i) => (l.reduction === 16 ? i : -1))
            .filter((i) => i >= 0)
            .pop()!;
          const sfp = simpleFeaturePyramid({ inChans: info[at16].numChs, outChans: 8, topBlock: true });
          const pyr = run(attach(b, sfp), x) as tf.Tensor[];
          expect(sfp.outStrides).toEqual([4, 8, 16, 32, 64]);
          pyr.forEach((p, i) =>
            expect(p.shape, `sfp level ${i}`).toEqual([2, Math.ceil(s / sfp.outStrides[i]), Math.ceil(s / sfp.outStrides[i]), 8]),
          );
          tf.dispose(pyr);
          release(sfp);

          // multi-level heads: on the backbone's levels, or behind a pyramid neck for plain backbones
          const neck = () => (fam.plain ? simpleFeaturePyramid({ inChans: info[info.length - 1].numChs, outChans: 8 }) : undefined);
          const levels = fam.plain ? [4, 8, 16, 32].map((r) => ({ numChs: 8, reduction: r })) : info;
          const chs = levels.map((l) => l.numChs);

          const n1 = neck();
          const f = fpn({ inChannels: chs, outChans: 8, numOuts: levels.length + 1 });
          const fo = run(attach(b, f, { neck: n1 }), x) as tf.Tensor[];
          const strides = [...levels.map((l) => l.reduction), 2 * levels[levels.length - 1].reduction];
          expect(f.outLevelInfo(levels).map((l) => l.reduction)).toEqual(strides);
          fo.forEach((p, i) => expect(p.shape, `fpn level ${i}`).toEqual([2, Math.ceil(s / strides[i]), Math.ceil(s / strides[i]), 8]));
          tf.dispose(fo);
          release(f, n1);

          for (const make of [
            () => uperNet({ inChannels: chs, channels: 8, numClasses: 3 }),
            () => segmentationHead({ inChannels: chs, numClasses: 3 }),
          ]) {
            const n2 = neck();
            const h = make();
            const m = attach(b, h, { neck: n2 });
            const y = run(m, x) as tf.Tensor;
            expect(y.shape, `${h.constructor.name} resized to the input`).toEqual([2, s, s, 3]);
            y.dispose();
            release(n2);
            const n3 = neck();
            const m2 = attach(b, h, { neck: n3, resizeToInput: false });
            const y2 = run(m2, x) as tf.Tensor;
            const r0 = levels[0].reduction;
            expect(y2.shape, `${h.constructor.name} at the finest level (stride ${r0})`).toEqual([2, s / r0, s / r0, 3]);
            y2.dispose();
            release(h, n3);
          }
          x.dispose();
          b.dispose();
        });
      }
    }
  });
}
