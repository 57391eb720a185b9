/**
 * The frozen-backbone path for video: an image backbone applied per frame and a temporal head over the
 * per-frame features, on cpu and wasm. The frame features equal the backbone run on each frame alone; the
 * order-blind 'mean' head ignores frame order and the 'concat' / 'transformer' heads do not; a training
 * step gives every head parameter a gradient and leaves the frozen backbone unchanged (and, unfrozen,
 * trains it too); no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticVideo } from '../../src/data/syntheticVideo.js';
import { frameVideoClassifier, temporalHead } from '../../src/heads/videoHead.js';
import { manualSeed } from '../../src/layers/init.js';
import { videoSwin } from '../../src/models/videoSwin/index.js';
import { vit } from '../../src/models/vit/index.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { maxAbsDiff } from '../helpers/fixtures.js';
import { step, stepAndCheckGradients } from '../helpers/training.js';

const tinyVit = () => vit({ imgSize: 32, patchSize: 8, embedDim: 16, depth: 1, numHeads: 2, numClasses: 0 });

for (const backend of BACKENDS) {
  describe(`frozen image backbone per frame + temporal head on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('temporal heads: mean = average over frames + fc; mean ignores frame order, concat and transformer do not', () => {
      manualSeed(3);
      const f = tf.randomNormal([2, 4, 8], 0, 1, 'float32', 1);
      const reversed = tf.reverse(f, 1);
      const before = tf.memory().numTensors;
      const mean = temporalHead({ inChans: 8, numClasses: 3, type: 'mean' });
      const concat = temporalHead({ inChans: 8, numClasses: 3, type: 'concat', numFrames: 4 });
      const trans = temporalHead({ inChans: 8, numClasses: 3, numFrames: 4, numHeads: 2 });
      const shapes = (h: { stateDict(): Record<string, tf.Tensor> }) => {
        const d = h.stateDict();
        const r = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.shape]));
        tf.dispose(Object.values(d));
        return r;
      };
      expect(Object.keys(shapes(mean)).sort()).toEqual(['fc.bias', 'fc.weight']);
      expect(shapes(concat)['fc.weight']).toEqual([3, 32]);
      const tk = Object.keys(shapes(trans));
      expect(tk).toContain('temporal_embed');
      expect(tk).toContain('blocks.0.attn.qkv.weight');
      expect(tk).toContain('norm.weight');
      const sd = mean.stateDict();
      const ym = mean.forward(f);
      const manual = tf.tidy(() => tf.add(tf.matMul(tf.mean(f, 1), sd['fc.weight'], false, true), sd['fc.bias']));
      expect(maxAbsDiff(ym.dataSync(), manual.dataSync())).toBeLessThan(1e-5);
      const diff = (h: { forward(x: tf.Tensor): tf.Tensor }) =>
        tf.tidy(() => tf.max(tf.abs(tf.sub(h.forward(f), h.forward(reversed)))).dataSync()[0]);
      expect(diff(mean)).toBeLessThan(1e-5);
      expect(diff(concat)).toBeGreaterThan(1e-3);
      // the order enters through temporal_embed (trained; here made large instead of its 0.02-std init)
      const tsd = trans.stateDict();
      tsd.temporal_embed.dispose();
      tsd.temporal_embed = tf.randomNormal([1, 4, 8], 0, 1, 'float32', 4);
      trans.loadStateDict(tsd);
      tf.dispose(Object.values(tsd));
      expect(diff(trans)).toBeGreaterThan(1e-3);
      // an NTHWC map is averaged over (H, W) first
      const map = tf.randomNormal([2, 4, 3, 3, 8], 0, 1, 'float32', 2);
      const a = trans.forward(map);
      const b = tf.tidy(() => trans.forward(tf.mean(map, [2, 3])));
      expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(1e-5);
      tf.dispose([ym, manual, map, a, b, ...Object.values(sd)]);
      [mean, concat, trans].forEach((h) => h.dispose());
      expect(tf.memory().numTensors).toBe(before);
      expectError(() => temporalHead({ inChans: 8, numClasses: 3, type: 'concat' }), /'concat' temporal head needs numFrames/);
      const t3 = temporalHead({ inChans: 8, numClasses: 3, numFrames: 3 });
      expectError(() => t3.forward(f), /built for 3 frames, got 4/);
      expectError(() => t3.forward(tf.zeros([2, 3, 5])), /expected 8 channels/);
      expectError(() => t3.forward(tf.zeros([2, 8])), /per-frame features \[B, T, C\]/);
      t3.dispose();
      tf.dispose([f, reversed]);
    });

    it('frame features are the image backbone on each frame; frameChunk changes nothing', () => {
      manualSeed(4);
      const clip = tf.randomNormal([2, 3, 32, 32, 3], 0, 1, 'float32', 3);
      const backbone = tinyVit();
      const model = frameVideoClassifier(backbone, { numClasses: 5, type: 'mean' });
      const chunked = frameVideoClassifier(tinyVit(), { numClasses: 5, type: 'mean' }, { frameChunk: 4 });
      const sd = model.stateDict();
      chunked.loadStateDict(sd);
      const before = tf.memory().numTensors;
      const feats = model.frameFeatures(clip);
      expect(feats.shape).toEqual([2, 3, 16]);
      for (const [b, t] of [
        [0, 0],
        [1, 2],
      ]) {
        const ref = tf.tidy(() => backbone.forward(clip.slice([b, t, 0, 0, 0], [1, 1, -1, -1, -1]).reshape([1, 32, 32, 3])) as tf.Tensor);
        const got = feats.slice([b, t, 0], [1, 1, -1]);
        expect(maxAbsDiff(got.dataSync(), ref.dataSync())).toBeLessThan(1e-5);
        tf.dispose([ref, got]);
      }
      const f2 = chunked.frameFeatures(clip);
      expect(maxAbsDiff(f2.dataSync(), feats.dataSync())).toBeLessThan(1e-5);
      const logits = model.forward(clip);
      expect(logits.shape).toEqual([2, 5]);
      tf.dispose([feats, f2, logits]);
      expect(tf.memory().numTensors).toBe(before);
      expectError(() => model.forward(tf.zeros([2, 32, 32, 3])), /NTHWC clip batch \[B, T, H, W, C\]/);
      expectError(
        () => frameVideoClassifier(tinyVit(), temporalHead({ inChans: 12, numClasses: 2, type: 'mean' })),
        /16-channel frame features, the temporal head expects 12/,
      );
      tf.dispose([clip, ...Object.values(sd)]);
      model.dispose();
      chunked.dispose();
    });

    it('training the temporal head on a frozen backbone: head gradients everywhere, backbone unchanged, no leak', () => {
      manualSeed(5);
      const data = syntheticVideo({ frameSize: 32, numFrames: 4, seed: 4 });
      const { clips, labels } = data.batch([0, 1, 2, 3]);
      const y = tf.oneHot(labels, data.numClasses);
      const model = frameVideoClassifier(tinyVit(), { numClasses: data.numClasses, numFrames: 4, numHeads: 2 });
      const headNames = model
        .namedParameters()
        .filter(([, p]) => p.trainable)
        .map(([n]) => n);
      expect(headNames.length).toBeGreaterThan(0);
      expect(headNames.every((n) => n.startsWith('head.'))).toBe(true);
      expect(model.trainableVariables().length).toBe(model.head.namedParameters().length);
      const bbBefore = model.backbone.stateDict();
      const opt = tf.train.sgd(0.05);
      const loss = () => tf.losses.softmaxCrossEntropy(y, model.forward(clips, { training: true })) as tf.Scalar;
      const losses = [stepAndCheckGradients(model, loss, opt, { label: backend, expectUpdate: true })];
      const before = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) losses.push(step(model, loss, opt));
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      const bbAfter = model.backbone.stateDict();
      for (const k of Object.keys(bbBefore)) expect(maxAbsDiff(bbAfter[k].dataSync(), bbBefore[k].dataSync()), k).toBe(0);
      tf.dispose([clips, labels, y, ...Object.values(bbBefore), ...Object.values(bbAfter)]);
      opt.dispose();
      model.dispose();
    });

    it('unfrozen (freeze: false), the backbone trains too: gradients on every parameter', () => {
      manualSeed(6);
      const data = syntheticVideo({ frameSize: 32, numFrames: 2, seed: 5 });
      const { clips, labels } = data.batch([0, 1]);
      const y = tf.oneHot(labels, data.numClasses);
      const model = frameVideoClassifier(tinyVit(), { numClasses: data.numClasses, type: 'concat', numFrames: 2 }, { freeze: false });
      expect(model.trainableVariables().length).toBe(model.namedParameters().length);
      const opt = tf.train.sgd(0.01);
      const before = tf.memory().numTensors;
      stepAndCheckGradients(model, () => tf.losses.softmaxCrossEntropy(y, model.forward(clips, { training: true })) as tf.Scalar, opt, {
        label: backend,
      });
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([clips, labels, y]);
      opt.dispose();
      model.dispose();
    });

    it('a Video Swin stage map feeds the temporal head too (NTHWC averaged over H, W)', () => {
      const m = videoSwin({ embedDim: 8, depths: [1, 1], numHeads: [1, 2], windowSize: [2, 2, 2], patchNorm: true });
      const h = temporalHead({ inChans: m.numFeatures, numClasses: 3, numFrames: 2, numHeads: 2 });
      const x = tf.randomNormal([1, 4, 16, 16, 3], 0, 1, 'float32', 9);
      const out = tf.tidy(() => h.forward(m.forward(x) as tf.Tensor5D));
      expect(out.shape).toEqual([1, 3]);
      tf.dispose([x, out]);
      m.dispose();
      h.dispose();
    });
  });
}
