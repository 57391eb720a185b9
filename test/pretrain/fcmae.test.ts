import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { convnextV2 } from '../../src/models/convnextV2/convnext.js';
import { fcmae } from '../../src/pretrain/fcmae.js';
import { repeatMask } from '../../src/pretrain/maskUtils.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectGradientsEverywhere, firstLast, seeded, smoothImages } from './tiny.js';

/** A tiny ConvNeXt V2: two stages (8, 16 channels), one block each, stride 8. */
const TINY_CNX = { dims: [8, 16], depths: [1, 1], featuresOnly: true };
const DECODER = { decoderDim: 16, decoderDepth: 1 };
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

for (const backend of BACKENDS) {
  describe(`FCMAE on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('the masked encoder equals the dense backbone without mask, and removed pixels never reach visible features', () => {
      const model = seeded(41, () => fcmae(convnextV2(TINY_CNX), DECODER));
      expect(model.stride).toBe(8);
      const x = smoothImages(2, 32, 1);
      const none = tf.zeros([2, 4, 4]);
      const before = tf.memory().numTensors;
      const z0 = model.forwardEncoder(x, { mask: none });
      expect(tf.memory().numTensors).toBe(before + 1);
      const ref = model.backbone.forwardFeatures(x);
      expect(maxAbsDiff(z0, ref)).toBeLessThan(1e-5);
      // sparse semantics: change only the removed pixels, the encoder output does not move at all
      const mask = model.generateMask(2, 32, 3);
      const pix = tf.tidy(() => repeatMask(mask as tf.Tensor3D, 8).expandDims(-1));
      const x2 = tf.tidy(() => tf.add(x, tf.mul(tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 2), pix)));
      const a = model.forwardEncoder(x, { mask });
      const b = model.forwardEncoder(x2, { mask });
      expect(maxAbsDiff(a, b)).toBe(0);
      // and removed positions are zero (the dense view of the sparse tensor)
      const atRemoved = tf.tidy(() => tf.max(tf.abs(tf.mul(a, mask.expandDims(-1)))).dataSync()[0]);
      expect(atRemoved).toBe(0);
      // control: without the masking the same perturbation leaks into the visible features
      const leak = maxAbsDiff(
        tf.tidy(() => tf.mul(model.backbone.forwardFeatures(x), tf.sub(1, mask.expandDims(-1)))),
        tf.tidy(() => tf.mul(model.backbone.forwardFeatures(x2), tf.sub(1, mask.expandDims(-1)))),
      );
      expect(leak).toBeGreaterThan(1e-4);
      const pred = model.forward(x, { mask });
      expect(pred.shape).toEqual([2, 4, 4, 8 * 8 * 3]);
      tf.dispose([x, none, z0, ref, mask, pix, x2, a, b, pred]);
      model.dispose();
    });

    it('gradients reach every trainable variable, 30 steps lower the loss, no leak per step', () => {
      // raw-pixel targets for the 30-step run: with per-patch normalised targets (the default, used in the gradient
      // check below) the removed patches of tiny random images stay at the zero-prediction baseline for many more steps
      const model = seeded(42, () => fcmae(convnextV2(TINY_CNX), { ...DECODER, normPixLoss: false }));
      const names = model.namedParameters().map(([n]) => n);
      for (const k of [
        'proj.weight',
        'mask_token',
        'decoder.0.conv_dw.weight',
        'decoder.0.mlp.grn.weight',
        'pred.weight',
        'encoder.stem.0.weight',
      ])
        expect(names).toContain(k);
      // images smooth at the scale of the 8 px patches (16 px noise cells), so removed patches are predictable from their neighbours
      const data = smoothImages(8, 32, 4, 3, 16);
      const batch = tf.tidy(() => data.slice([0, 0, 0, 0], [2, -1, -1, -1]));
      const mask = model.generateMask(2, 32, 5);
      expectGradientsEverywhere(model, () => model.loss(batch, { mask, training: true }));
      const normModel = seeded(42, () => fcmae(convnextV2(TINY_CNX), DECODER));
      expect(normModel.opts.normPixLoss).toBe(true);
      expectGradientsEverywhere(normModel, () => normModel.loss(batch, { mask, training: true }));
      normModel.dispose();
      tf.dispose([batch, mask]);
      const counts: number[] = [];
      const trainer = new Trainer({
        model,
        lr: 1e-2,
        warmupSteps: 3,
        seed: 6,
        loss: (b: tf.Tensor, ctx) => model.loss(b, { mask: model.generateMask(b.shape[0], 32, ctx.rng), training: true }),
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
      expect(new Set(counts.slice(1)).size).toBe(1);
      const { first, last } = firstLast(infos);
      console.log(
        `FCMAE convnextv2 [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`,
      );
      // margin: the mean loss of the last 5 steps is at most 80% of the first 5 (measured ~0.66)
      expect(last).toBeLessThan(0.8 * first);
      tf.dispose(data);
      trainer.dispose();
      model.dispose();
    });

    it('clear errors: head present, mask grid, image size', () => {
      expect(() => fcmae(convnextV2({ dims: [8, 16], depths: [1, 1], numClasses: 0 }), DECODER)).toThrow(/featuresOnly: true/);
      const model = fcmae(convnextV2(TINY_CNX), DECODER);
      const x = tf.zeros([2, 32, 32, 3]);
      const bad = tf.zeros([2, 2, 2]);
      expect(() => model.forward(x, { mask: bad })).toThrow(
        /expected a mask \[2, 4, 4\] \(image 32x32 \/ stride 8\), got shape \[2, 2, 2\]/,
      );
      const x36 = tf.zeros([2, 36, 36, 3]);
      expect(() => model.forward(x36, { mask: bad })).toThrow(/36x36 is not divisible by the encoder stride 8/);
      tf.dispose([x, bad, x36]);
      model.dispose();
    });
  });
}
