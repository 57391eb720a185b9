import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { vit } from '../../src/models/vit/visionTransformer.js';
import { milan, vitTeacher } from '../../src/pretrain/milan.js';
import { disposeTokenMasking } from '../../src/pretrain/randomMasking.js';
import { simmim } from '../../src/pretrain/simmim.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { vitMaskedEncoder } from '../../src/pretrain/vitMaskedEncoder.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectGradientsEverywhere, firstLast, seeded, smoothImages, TINY_VIT } from './tiny.js';

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const MILAN_DEC = { teacherDim: 24, decoderDim: 16, decoderDepth: 2, decoderNumHeads: 2 };

for (const backend of BACKENDS) {
  describe(`ViT pretraining (SimMIM, MILAN) on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('the ViT masked encoder equals forwardFeatures without the class token', () => {
      const model = seeded(31, () => vit(TINY_VIT));
      const enc = vitMaskedEncoder(model);
      const x = smoothImages(2, 32, 1);
      const ref = tf.tidy(() => model.forwardFeatures(x).slice([0, 1, 0], [2, 16, 16]).reshape([2, 4, 4, 16]));
      const before = tf.memory().numTensors;
      const out = enc.encode(x, null);
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(maxAbsDiff(out, ref)).toBeLessThan(1e-5);
      tf.dispose([x, ref, out]);
      model.dispose();
    });

    it('SimMIM on ViT: gradients everywhere, 30 steps lower the loss, no leak per step', () => {
      const model = seeded(32, () => simmim(vit(TINY_VIT), { maskPatchSize: 8 }));
      expect(model.encoderStride).toBe(8);
      const data = smoothImages(8, 32, 2);
      const batch = tf.tidy(() => data.slice([0, 0, 0, 0], [2, -1, -1, -1]));
      const mask = model.generateMask(2, 32, 3);
      expect(mask.shape).toEqual([2, 4, 4]);
      expectGradientsEverywhere(model, () => model.loss(batch, { mask, training: true }));
      tf.dispose([batch, mask]);
      const counts: number[] = [];
      const trainer = new Trainer({
        model,
        lr: 2e-3,
        warmupSteps: 3,
        seed: 4,
        loss: (b: tf.Tensor, ctx) => model.loss(b, { mask: model.generateMask(b.shape[0], 32, ctx.rng), training: true }),
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
      expect(new Set(counts.slice(1)).size).toBe(1);
      const { first, last } = firstLast(infos);
      console.log(`SimMIM vit [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`);
      // margin: the mean loss of the last 5 steps is at most 80% of the first 5
      expect(last).toBeLessThan(0.8 * first);
      tf.dispose(data);
      trainer.dispose();
      model.dispose();
    });

    it('MILAN: the prompting decoder keeps visible tokens fixed and only updates mask tokens', () => {
      const model = seeded(33, () => milan(vit(TINY_VIT), MILAN_DEC));
      const x = smoothImages(2, 32, 5);
      const masking = model.generateMasking(2, 6);
      expect(masking.lenKeep).toBe(4);
      const before = tf.memory().numTensors;
      const p0 = model.forward(x, { masking });
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(p0.shape).toEqual([2, 17, 24]);
      // perturb the decoder blocks: outputs of the class token and the visible tokens must not move
      const fc2 = model.decoderBlocks[1].mlp.fc2.weight.variable;
      const saved = fc2.clone();
      tf.tidy(() => fc2.assign(tf.add(fc2, tf.randomNormal(fc2.shape, 0, 0.5, 'float32', 1))));
      const p1 = model.forward(x, { masking });
      fc2.assign(saved);
      const m = masking.mask.arraySync();
      const d = tf.tidy(() => tf.abs(tf.sub(p0, p1)).max(-1).arraySync()) as number[][];
      for (let n = 0; n < 2; n++) {
        expect(d[n][0]).toBe(0); // class token
        for (let t = 0; t < 16; t++) {
          if (m[n][t] === 0) expect(d[n][t + 1]).toBe(0);
          else expect(d[n][t + 1]).toBeGreaterThan(0);
        }
      }
      tf.dispose([x, p0, p1, saved]);
      disposeTokenMasking(masking);
      model.dispose();
    });

    it('MILAN: semantic masking from a frozen ViT teacher, gradients everywhere, 30 steps lower the loss, teacher unchanged, no leak', () => {
      const teacherModel = seeded(34, () => vit({ ...TINY_VIT, embedDim: 24, numHeads: 2 }));
      const teacher = vitTeacher(teacherModel);
      const model = seeded(35, () => milan(vit(TINY_VIT), MILAN_DEC));
      const names = model.namedParameters().map(([n]) => n);
      for (const k of [
        'decoder_embed.weight',
        'mask_token',
        'decoder_pos_embed',
        'decoder_blocks.0.attn.q.weight',
        'decoder_blocks.0.attn.kv.weight',
        'decoder_pred.weight',
        'encoder.cls_token',
      ])
        expect(names).toContain(k);
      expect(
        model
          .namedParameters()
          .filter(([, p]) => !p.trainable)
          .map(([n]) => n),
      ).toEqual(['decoder_pos_embed']);
      const data = smoothImages(8, 32, 7);
      const x = tf.tidy(() => data.slice([0, 0, 0, 0], [2, -1, -1, -1]));
      const t = teacher(x);
      expect(t.features.shape).toEqual([2, 17, 24]);
      expect(t.importance!.shape).toEqual([2, 16]);
      // importance is the class-token attention: a distribution over the patches (and the class token itself)
      const s = t.importance!.sum(1).dataSync();
      for (const v of s) {
        expect(v).toBeGreaterThan(0);
        expect(v).toBeLessThanOrEqual(1 + 1e-5);
      }
      const masking = model.generateMasking(2, 1, t.importance);
      expectGradientsEverywhere(model, () => model.loss(x, { masking, target: t.features, training: true }));
      disposeTokenMasking(masking);
      tf.dispose([x, t.features, t.importance!]);

      const teacherBefore = teacherModel.stateDict();
      const counts: number[] = [];
      const trainer = new Trainer({
        model,
        lr: 1e-2,
        warmupSteps: 3,
        seed: 5,
        loss: (b: tf.Tensor, ctx) => {
          const out = teacher(b);
          const mk = model.generateMasking(b.shape[0], ctx.rng, out.importance);
          try {
            return model.loss(b, { masking: mk, target: out.features, training: true });
          } finally {
            disposeTokenMasking(mk);
          }
        },
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
      expect(new Set(counts.slice(1)).size).toBe(1);
      const { first, last } = firstLast(infos);
      console.log(`MILAN vit [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`);
      // margin: the mean loss of the last 5 steps is at most 80% of the first 5 (measured ~0.72)
      expect(last).toBeLessThan(0.8 * first);
      const teacherAfter = teacherModel.stateDict();
      for (const k of Object.keys(teacherBefore)) expect(maxAbsDiff(teacherBefore[k], teacherAfter[k]), k).toBe(0);
      tf.dispose([data, ...Object.values(teacherBefore), ...Object.values(teacherAfter)]);
      trainer.dispose();
      model.dispose();
      teacherModel.dispose();
    });

    it('clear errors: ViT without class token, wrong masking, wrong teacher width', () => {
      expect(() => milan(vit({ ...TINY_VIT, classToken: false, globalPool: 'avg' }), MILAN_DEC)).toThrow(/class token/);
      const model = milan(vit(TINY_VIT), MILAN_DEC);
      const x = tf.zeros([2, 32, 32, 3]);
      const m3 = model.generateMasking(3, 1);
      expect(() => model.forward(x, { masking: m3 })).toThrow(/expected a masking of \[2, 16\] tokens/);
      const m2 = model.generateMasking(2, 1);
      const badT = tf.zeros([2, 17, 8]);
      expect(() => model.loss(x, { masking: m2, target: badT })).toThrow(/expected teacher features \[2, 17, 24\]/);
      tf.dispose([x, badT]);
      disposeTokenMasking(m3);
      disposeTokenMasking(m2);
      model.dispose();
    });
  });
}
