/**
 * One parametrised test over every backbone family at a tiny size (timm's habit): forward, backward
 * (gradients reach every variable), intermediates vs featureInfo, featuresOnly, state-dict round
 * trip through safetensors, rebuild from (family, config), and no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import { getFamilyFactory, listModels, getModelEntry } from '../../src/models/registry.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { FAMILIES } from '../helpers/families.js';
import { stepAndCheckGradients } from '../helpers/training.js';

const SIZE = 64;

for (const backend of BACKENDS) {
  describe(`every family on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const fam of FAMILIES) {
      it(`${fam.name}: forward, backward, intermediates, featuresOnly, state-dict round trip, rebuild, no leak`, () => {
        manualSeed(3);
        const m = fam.build(SIZE, { numClasses: 5 });
        const x = tf.randomNormal([2, SIZE, SIZE, 3], 0, 1, 'float32', 9);
        const before = tf.memory().numTensors;

        // forward
        const logits = m.forwardLogits(x);
        expect(logits.shape).toEqual([2, 5]);
        const ff = m.forwardFeatures(x);
        const pre = m.forwardHead(ff, { preLogits: true });
        expect(pre.shape).toEqual([2, m.numFeatures]);
        tf.dispose([ff, pre]);

        // intermediates match featureInfo
        const inter = m.forwardIntermediates(x, { intermediatesOnly: true });
        expect(inter.length).toBe(m.featureInfo.length);
        inter.forEach((t, i) => {
          const fi = m.featureInfo[i];
          expect(t.shape, `level ${i}`).toEqual([2, Math.ceil(SIZE / fi.reduction), Math.ceil(SIZE / fi.reduction), fi.numChs]);
        });
        // without intermediatesOnly: forwardFeatures(x) first, then the same intermediates
        const [final, inter2] = m.forwardIntermediates(x) as [tf.Tensor, tf.Tensor4D[]];
        const ff2 = m.forwardFeatures(x);
        expect(final.shape).toEqual(ff2.shape);
        expect(Array.from(final.dataSync())).toEqual(Array.from(ff2.dataSync()));
        expect(inter2.length).toBe(inter.length);
        inter2.forEach((t, i) => expect(Array.from(t.dataSync()), `level ${i}`).toEqual(Array.from(inter[i].dataSync())));
        tf.dispose([final, ff2, ...inter, ...inter2]);
        expect(tf.memory().numTensors).toBe(before + 1); // only logits alive

        // backward: every trainable variable gets a gradient
        const y = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 5);
        const opt = tf.train.sgd(0.01);
        stepAndCheckGradients(m, () => tf.losses.softmaxCrossEntropy(y, m.forwardLogits(x, { training: true })) as tf.Scalar, opt);
        const afterStep = tf.memory().numTensors;
        stepAndCheckGradients(m, () => tf.losses.softmaxCrossEntropy(y, m.forwardLogits(x, { training: true })) as tf.Scalar, opt);
        expect(tf.memory().numTensors).toBe(afterStep);

        // state-dict round trip through safetensors into a model rebuilt from (family, config)
        expect(m.family).toBe(fam.name);
        const rebuilt = getFamilyFactory(m.family)(m.config);
        const sd = m.stateDict();
        const bytes = writeSafetensors(sd);
        loadTimmWeights(rebuilt, bytes);
        const a = m.forwardLogits(x);
        const b = rebuilt.forwardLogits(x);
        expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));

        // featuresOnly with negative outIndices loads the same checkpoint (head skipped)
        const fo = fam.build(SIZE, { featuresOnly: true, outIndices: [-1] });
        const res = loadTimmWeights(fo, bytes);
        expect(res.skipped.every((k) => k.startsWith('head') || k.startsWith('fc_norm'))).toBe(true);
        const feats = fo.forward(x) as tf.Tensor4D[];
        expect(feats.length).toBe(1);
        expect(feats[0].shape[3]).toBe(fo.featureInfo[fo.featureInfo.length - 1].numChs);

        tf.dispose([logits, a, b, y, x, ...feats, ...Object.values(sd)]);
        opt.dispose();
        m.dispose();
        rebuilt.dispose();
        fo.dispose();
      });
    }
  });
}

describe('registry', () => {
  it('every registered variant belongs to a family with a factory and names its input size', () => {
    const names = listModels();
    expect(names.length).toBeGreaterThan(50);
    for (const n of names) {
      const e = getModelEntry(n);
      expect(typeof getFamilyFactory(e.family)).toBe('function');
      expect(e.pretrainedCfg.inputSize[0]).toBe(3);
    }
    for (const fam of FAMILIES) expect(names.some((n) => getModelEntry(n).family === fam.name), fam.name).toBe(true);
  });
});
