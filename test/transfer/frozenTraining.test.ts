/**
 * Frozen-backbone transfer: 20 training steps of a head on a frozen backbone leave every backbone
 * variable bit-identical while the head's loss falls; with stage adapters only the adapter and head
 * variables train; freezing the first N stages keeps exactly those (and the stem) fixed.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attach, AttachedModel } from '../../src/tasks/attach.js';
import { classifierHead } from '../../src/layers/classifier.js';
import { pixelCrossEntropy } from '../../src/heads/pixelCrossEntropy.js';
import { segmentationHead } from '../../src/heads/segmentationHead.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { manualSeed } from '../../src/layers/init.js';
import type { Module } from '../../src/layers/module.js';
import { convnextV2 } from '../../src/models/convnextV2/index.js';
import { swin } from '../../src/models/swin/index.js';
import { vitDet } from '../../src/models/vitDet/index.js';
import { stageAdapters } from '../../src/transfer/adapter.js';
import { freeze, freezeStages, frozenParameterNames } from '../../src/transfer/freeze.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

/** A four-stage Swin of 8 channels at 32 px, headless. */
function tinySwin() {
  return swin({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 });
}

const snapshot = (m: Module) =>
  new Map(m.namedParameters().map(([n, p]) => [n, Buffer.from((p.variable.dataSync() as Float32Array).slice().buffer)]));
const changed = (before: Map<string, Buffer>, m: Module) =>
  m
    .namedParameters()
    .filter(([n, p]) => Buffer.compare(before.get(n)!, Buffer.from((p.variable.dataSync() as Float32Array).slice().buffer)) !== 0)
    .map(([n]) => n);

/** Fixed labels for a 3-class segmentation of a [2, s, s] batch, 1 pixel in 8 ignored (255). */
function labels(s: number): tf.Tensor3D {
  const v = new Int32Array(2 * s * s);
  for (let i = 0; i < v.length; i++) {
    const y = Math.floor(i / s) % s;
    const x = i % s;
    v[i] = (x * 7 + y * 3) % 8 === 0 ? 255 : x < s / 2 ? 0 : y < s / 2 ? 1 : 2;
  }
  return tf.tensor3d(v, [2, s, s], 'int32');
}

/** Train `model` with Adam on the segmentation loss; returns [train losses, eval loss before, eval loss after]. */
function train(
  model: AttachedModel,
  x: tf.Tensor,
  y: tf.Tensor,
  steps: number,
): { losses: number[]; evalBefore: number; evalAfter: number } {
  const evalLoss = () => tf.tidy(() => pixelCrossEntropy(model.forward(x) as tf.Tensor, y).dataSync()[0]);
  const evalBefore = evalLoss();
  const opt = tf.train.adam(0.01);
  const vars = model.trainableVariables();
  const losses: number[] = [];
  let count = -1;
  for (let i = 0; i < steps; i++) {
    const loss = opt.minimize(() => pixelCrossEntropy(model.forward(x, { training: true }) as tf.Tensor, y) as tf.Scalar, true, vars)!;
    losses.push(loss.dataSync()[0]);
    loss.dispose();
    // after the first step (which creates the optimizer's slots) a step leaks nothing
    if (i === 1) count = tf.memory().numTensors;
    if (i > 1) expect(tf.memory().numTensors).toBe(count);
  }
  const evalAfter = evalLoss();
  opt.dispose();
  return { losses, evalBefore, evalAfter };
}

for (const backend of BACKENDS) {
  describe(`frozen-backbone transfer on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('UPerNet on a frozen Swin: 20 steps, backbone bit-identical, loss falls', () => {
      manualSeed(1);
      const b = tinySwin();
      const frozen = freeze(b);
      expect(frozen.length).toBe(b.namedParameters().length);
      const model = attach(b, uperNet({ inChannels: [8, 16, 32, 64], channels: 4, numClasses: 3 }));
      const headVars = model.head.trainableVariables();
      expect(
        model
          .trainableVariables()
          .map((v) => v.name)
          .sort(),
      ).toEqual(headVars.map((v) => v.name).sort());
      const bb = snapshot(b);
      const hb = snapshot(model.head);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 2);
      const y = labels(32);
      const r = train(model, x, y, 20);
      console.log(
        `[${backend}] uperNet/swin losses ${r.losses.map((l) => l.toFixed(4)).join(' ')}; eval ${r.evalBefore.toFixed(4)} -> ${r.evalAfter.toFixed(4)}`,
      );
      expect(changed(bb, b)).toEqual([]);
      const headChanged = changed(hb, model.head);
      expect(headChanged.filter((n) => !/running_|num_batches/.test(n)).sort()).toEqual(
        model.head
          .namedParameters()
          .filter(([, p]) => p.trainable)
          .map(([n]) => n)
          .sort(),
      );
      expect(r.losses[19]).toBeLessThan(r.losses[0]);
      expect(r.evalAfter).toBeLessThan(r.evalBefore);
      tf.dispose([x, y]);
      model.dispose();
    });

    it('simple feature pyramid + segmentation head on a frozen ViTDet: 20 steps, backbone bit-identical, loss falls', () => {
      manualSeed(2);
      const b = vitDet({
        imgSize: 32,
        patchSize: 16,
        embedDim: 16,
        depth: 2,
        numHeads: 2,
        windowSize: 2,
        globalAttnIndexes: [1],
        useRelPos: true,
        neckChans: 8,
        numClasses: 0,
      });
      freeze(b);
      const model = attach(b, segmentationHead({ inChannels: [4, 4, 4, 4], numClasses: 3 }), {
        neck: simpleFeaturePyramid({ inChans: 16, outChans: 4 }),
      });
      expect(model.trainableVariables().length).toBe(model.neck!.trainableVariables().length + model.head.trainableVariables().length);
      const bb = snapshot(b);
      const nb = snapshot(model.neck!);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3);
      const y = labels(32);
      const r = train(model, x, y, 20);
      console.log(
        `[${backend}] sfp+seg/vitdet losses ${r.losses.map((l) => l.toFixed(4)).join(' ')}; eval ${r.evalBefore.toFixed(4)} -> ${r.evalAfter.toFixed(4)}`,
      );
      expect(changed(bb, b)).toEqual([]);
      expect(changed(nb, model.neck!).length).toBe(model.neck!.namedParameters().length); // transposed convs, norms and convs all train
      expect(r.losses[19]).toBeLessThan(r.losses[0]);
      expect(r.evalAfter).toBeLessThan(r.evalBefore);
      tf.dispose([x, y]);
      model.dispose();
    });

    it('adapters on a frozen ConvNeXt V2: only adapter and head variables train', () => {
      manualSeed(3);
      const b = convnextV2({ dims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numClasses: 0 });
      freeze(b);
      const adapters = stageAdapters(b, { reduction: 2 });
      const model = attach(b, segmentationHead({ inChannels: [8, 8, 16, 16], numClasses: 3 }), { adapters });
      const trainable = new Set(model.trainableVariables().map((v) => v.name));
      const expected = [...adapters.trainableVariables(), ...model.head.trainableVariables()].map((v) => v.name);
      expect([...trainable].sort()).toEqual(expected.sort());
      const bb = snapshot(b);
      const ab = snapshot(adapters);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 4);
      const y = labels(32);
      // the adapters change the features the head sees (they run inside the backbone)
      const plain = attach(
        convnextV2({ dims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numClasses: 0 }),
        segmentationHead({ inChannels: [8, 8, 16, 16], numClasses: 3 }),
      );
      plain.loadStateDict(Object.fromEntries(Object.entries(model.stateDict()).filter(([k]) => !k.startsWith('adapters.'))));
      const r = train(model, x, y, 20);
      console.log(
        `[${backend}] adapters/convnext losses ${r.losses.map((l) => l.toFixed(4)).join(' ')}; eval ${r.evalBefore.toFixed(4)} -> ${r.evalAfter.toFixed(4)}`,
      );
      expect(changed(bb, b)).toEqual([]);
      expect(changed(ab, adapters).sort()).toEqual(
        adapters
          .namedParameters()
          .map(([n]) => n)
          .sort(),
      );
      expect(r.losses[19]).toBeLessThan(r.losses[0]);
      expect(r.evalAfter).toBeLessThan(r.evalBefore);
      // after training, the adapted model differs from the same weights without adapters
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(model.forward(x) as tf.Tensor, plain.forward(x) as tf.Tensor))).dataSync()[0]);
      expect(diff).toBeGreaterThan(1e-3);
      // the backbone, used on its own afterwards, is the unadapted one again
      const own = tf.tidy(() => {
        const a = b.forwardIntermediates(x, { intermediatesOnly: true });
        const c = plain.backbone.forwardIntermediates(x, { intermediatesOnly: true });
        return Math.max(...a.map((t, i) => tf.max(tf.abs(tf.sub(t, c[i]))).dataSync()[0]));
      });
      expect(own).toBe(0);
      tf.dispose([x, y]);
      model.dispose();
      plain.dispose();
    });

    it('freezeStages(backbone, 2): the stem and stages 0-1 stay fixed, later stages and the head train', () => {
      manualSeed(4);
      const b = tinySwin();
      const frozen = freezeStages(b, 2);
      const names = b.namedParameters().map(([n]) => n);
      const expectFrozen = names.filter((n) => /^(patch_embed|layers\.[01])\./.test(n));
      expect(frozen.sort()).toEqual(expectFrozen.sort());
      expect(frozenParameterNames(b).sort()).toEqual(expectFrozen.sort());
      const model = attach(b, classifierHead({ inChans: 64, numClasses: 4 }));
      const before = snapshot(b);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
      const y = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 4);
      const opt = tf.train.sgd(0.1);
      for (let i = 0; i < 3; i++) {
        const l = opt.minimize(
          () => tf.losses.softmaxCrossEntropy(y, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar,
          true,
          model.trainableVariables(),
        )!;
        l.dispose();
      }
      const moved = changed(before, b);
      expect(moved.some((n) => n.startsWith('layers.2.'))).toBe(true);
      expect(moved.some((n) => n.startsWith('layers.3.'))).toBe(true);
      expect(moved.filter((n) => expectFrozen.includes(n))).toEqual([]);
      expect(() => freezeStages(b, 5)).toThrow(/numStages 5 is more than the backbone's 4 stages/);
      tf.dispose([x, y]);
      opt.dispose();
      model.dispose();
    });
  });
}
