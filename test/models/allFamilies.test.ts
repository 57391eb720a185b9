/**
 * One parametrised test over every backbone family at a tiny size (timm's habit): forward, backward
 * (gradients reach every variable), intermediates vs featureInfo, featuresOnly, state-dict round
 * trip through safetensors, rebuild from (family, config), and no leaked tensors.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed, withoutInit } from '../../src/layers/init.js';
import { getFamily, getFamilyFactory, listFamilies, listModels, getModelEntry } from '../../src/models/registry.js';
import type { Backbone } from '../../src/models/backbone.js';
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
        const m = fam.build(SIZE, fam.classifier ? { numClasses: 5 } : {});
        const x = tf.randomNormal([2, SIZE, SIZE, 3], 0, 1, 'float32', 9);
        // a family without classifier (SeMask) is scored by randomly weighted means of everything forward returns
        const score = (mm: Backbone, training = false): tf.Tensor2D =>
          fam.classifier
            ? mm.forwardLogits(x, { training })
            : tf.tidy(() => {
                const outs: tf.Tensor[] = [];
                const collect = (v: unknown): void => {
                  if (v instanceof tf.Tensor) outs.push(v);
                  else if (Array.isArray(v)) v.forEach(collect);
                  else if (v && typeof v === 'object') Object.values(v).forEach(collect);
                };
                collect(mm.forward(x, { training }));
                // fixed random weights: a plain mean of a LayerNorm's output does not depend on its weight
                return tf.concat(
                  outs.map((t, i) =>
                    t
                      .mul(tf.randomNormal(t.shape, 0, 1, 'float32', 100 + i))
                      .reshape([2, -1])
                      .mean(1, true),
                  ),
                  1,
                ) as tf.Tensor2D;
              });
        const before = tf.memory().numTensors;

        // forward
        const logits = score(m);
        if (fam.classifier) {
          expect(logits.shape).toEqual([2, 5]);
          const ff = m.forwardFeatures(x);
          const pre = m.forwardHead(ff, { preLogits: true });
          expect(pre.shape).toEqual([2, m.numFeatures]);
          tf.dispose([ff, pre]);
        }

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
        const loss = () =>
          (fam.classifier ? tf.losses.softmaxCrossEntropy(y, score(m, true)) : tf.mean(tf.square(score(m, true)))) as tf.Scalar;
        stepAndCheckGradients(m, loss, opt);
        const afterStep = tf.memory().numTensors;
        stepAndCheckGradients(m, loss, opt);
        expect(tf.memory().numTensors).toBe(afterStep);

        // state-dict round trip through safetensors into a model rebuilt from (family, config)
        expect(m.family).toBe(fam.name);
        const rebuilt = getFamilyFactory(m.family)(m.config);
        const sd = m.stateDict();
        const bytes = writeSafetensors(sd);
        loadTimmWeights(rebuilt, bytes);
        const a = score(m);
        const b = score(rebuilt);
        expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));

        // featuresOnly with negative outIndices loads the same checkpoint (head skipped)
        const fo = fam.build(SIZE, { featuresOnly: true, outIndices: [-1] });
        const res = loadTimmWeights(fo, bytes);
        expect(res.skipped.every((k) => fo.headPrefixes.some((p) => k.startsWith(p)) || k.startsWith('fc_norm'))).toBe(true);
        const feats = fo.forward(x) as tf.Tensor4D[];
        expect(feats.length).toBe(1);
        expect(feats[0].shape[3]).toBe(fo.featureInfo[fo.featureInfo.length - 1].numChs);

        tf.dispose([logits, a, b, y, x, ...feats, ...Object.values(sd)]);
        opt.dispose();
        m.dispose();
        rebuilt.dispose();
        fo.dispose();
      });

      it(`${fam.name}: forwardIntermediates, every combination of indices / stopEarly / norm / intermediatesOnly`, () => {
        manualSeed(4);
        const m = fam.build(SIZE, fam.classifier ? { numClasses: 5 } : {});
        const x = tf.randomNormal([1, SIZE, SIZE, 3], 0, 1, 'float32', 11);
        const n = m.featureInfo.length;
        tf.dispose(m.forwardIntermediates(x, { intermediatesOnly: true })); // first call at this size builds cached tables
        const before = tf.memory().numTensors;
        for (const norm of [false, true]) {
          const full = m.forwardIntermediates(x, { norm, intermediatesOnly: true });
          const [trunkFull, mapsFull] = m.forwardIntermediates(x, { norm }) as [tf.Tensor, tf.Tensor4D[]];
          const ff = m.forwardFeatures(x);
          expect(Array.from(trunkFull.dataSync())).toEqual(Array.from(ff.dataSync()));
          tf.dispose([trunkFull, ff, ...mapsFull]);
          const indexSets: (number | number[])[] = [
            [0],
            [n - 1],
            [-1],
            1,
            n,
            Array.from({ length: n }, (_, i) => i),
            ...(n > 2 ? [[0, 2]] : []),
          ];
          for (const indices of indexSets) {
            const want =
              typeof indices === 'number'
                ? Array.from({ length: indices }, (_, i) => n - indices + i)
                : indices.map((i) => (i < 0 ? n + i : i));
            for (const stopEarly of [false, true]) {
              for (const intermediatesOnly of [false, true]) {
                const what = `norm=${norm} indices=${JSON.stringify(indices)} stopEarly=${stopEarly} intermediatesOnly=${intermediatesOnly}`;
                const res = m.forwardIntermediates(x, { indices, norm, stopEarly, intermediatesOnly });
                const maps = intermediatesOnly ? (res as tf.Tensor4D[]) : (res as [tf.Tensor, tf.Tensor4D[]])[1];
                expect(maps.length, what).toBe(want.length);
                maps.forEach((t, k) =>
                  expect(Array.from(t.dataSync()), `${what} level ${want[k]}`).toEqual(Array.from(full[want[k]].dataSync())),
                );
                if (!intermediatesOnly) {
                  const trunk = (res as [tf.Tensor, tf.Tensor4D[]])[0];
                  expect(trunk.shape[0], what).toBe(1);
                  tf.dispose(trunk);
                }
                tf.dispose(maps);
              }
            }
          }
          tf.dispose(full);
        }
        expect(tf.memory().numTensors).toBe(before);
        x.dispose();
        m.dispose();
      });
    }
  });
}

/** A registered variant's config at one block per stage (the widths, windows and sizes kept). */
function shallow(config: Record<string, unknown>): Record<string, unknown> {
  const c: Record<string, unknown> = { ...config };
  const ones = (v: unknown) => (Array.isArray(v) ? v.map(() => 1) : typeof v === 'number' ? 1 : v);
  for (const k of ['depths', 'depth']) if (k in c) c[k] = ones(c[k]);
  if (c.cfg && typeof c.cfg === 'object') {
    const inner = { ...(c.cfg as Record<string, unknown>) };
    for (const k of ['depths', 'depth']) if (k in inner) inner[k] = ones(inner[k]);
    c.cfg = inner;
  }
  if (Array.isArray(c.globalAttnIndexes)) c.globalAttnIndexes = [0];
  return c;
}

describe('every registered variant at one block per stage (cpu)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  for (const name of listModels().filter((n) => getModelEntry(n).kind === 'image')) {
    it(`${name}: builds, featureInfo, rebuilds from (family, config) with the same state-dict keys and shapes`, () => {
      const e = getModelEntry(name);
      // built without random init: the sweep checks configs and structure, not values
      const m = withoutInit(() => e.create(shallow(e.config)));
      try {
        expect(m.family).toBe(e.family);
        expect(m.featureInfo.length).toBeGreaterThan(0);
        for (const fi of m.featureInfo) expect(fi.numChs > 0 && fi.reduction > 0).toBe(true);
        expect(e.pretrainedCfg.inputSize[0]).toBe(m.inChans);
        const rebuilt = withoutInit(() => getFamily(e.family).create(m.config));
        const shapes = (mm: typeof m) => mm.namedParameters().map(([k, p]) => `${k}:${p.torchShape.join('x')}`);
        expect(shapes(rebuilt)).toEqual(shapes(m));
        rebuilt.dispose();
      } finally {
        m.dispose();
      }
    });
  }
});

describe('registry', () => {
  it('every registered variant belongs to a family with a factory and names its input size', () => {
    const names = listModels();
    expect(names.length).toBeGreaterThan(50);
    for (const n of names) {
      const e = getModelEntry(n);
      expect(typeof getFamilyFactory(e.family)).toBe('function');
      expect(e.pretrainedCfg.inputSize[0]).toBe(3);
    }
    for (const fam of FAMILIES)
      expect(
        names.some((n) => getModelEntry(n).family === fam.name),
        fam.name,
      ).toBe(true);
    expect(listFamilies().map((f) => f.name)).toEqual(FAMILIES.map((f) => f.name));
  });
});
