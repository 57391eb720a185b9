/**
 * CLIP as a teacher: a frozen `clipVisionTransformer` is the feature target of MILAN and EVA pretraining end
 * to end (`loss(x, { seed })` computes the target and the masking itself): the teacher's features are its
 * `ln_post` + projected tokens, computed outside the gradient tape; the teacher never changes; the student's
 * loss falls; no step leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipVisionTransformer, ClipVisionTransformer } from '../../src/models/clip/index.js';
import { vit } from '../../src/models/vit/visionTransformer.js';
import { clipTeacher, noGrad } from '../../src/pretrain/clipTeacher.js';
import { evaPretrain } from '../../src/pretrain/evaPretrain.js';
import { milan } from '../../src/pretrain/milan.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { expectGradientsEverywhere, firstLast, seeded, smoothImages, TINY_VIT } from './tiny.js';

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
/** A tiny CLIP image tower on the student's geometry: 32 px, patch 8 (4x4 grid), width 16, projection to 24. */
const tinyClip = (seed: number): ClipVisionTransformer =>
  seeded(seed, () => clipVisionTransformer({ imageSize: 32, patchSize: 8, width: 16, layers: 2, heads: 2, outputDim: 24 }));
const bytes = (m: ClipVisionTransformer) => {
  const sd = m.stateDict();
  const out = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, Buffer.from((t.dataSync() as Float32Array).slice().buffer)]));
  tf.dispose(Object.values(sd));
  return out;
};

for (const backend of BACKENDS) {
  describe(`CLIP teacher for MILAN / EVA on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('clipTeacher: frozen, ln_post + projected tokens (class token = the pooled CLIP feature), importance, zero gradient', () => {
      const clip = tinyClip(41);
      const teacher = clipTeacher(clip);
      expect(clip.trainableVariables()).toEqual([]);
      expect(teacher.dim).toBe(24);
      const x = smoothImages(2, 32, 3);
      const before = tf.memory().numTensors;
      const t = teacher(x);
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(t.features.shape).toEqual([2, 17, 24]);
      expect(t.importance!.shape).toEqual([2, 16]);
      // token 0 is CLIP's image feature (ln_post of the class token, projected); the others its projected patch tokens
      const pooled = clip.forward(x);
      expect(
        maxAbsDiff(
          tf.tidy(() => t.features.slice([0, 0, 0], [2, 1, 24]).reshape([2, 24])),
          pooled,
        ),
      ).toBeLessThan(1e-5);
      const tokens = clip.forwardTokens(x).tokens;
      const projTokens = tf.tidy(() => tf.matMul(tokens.reshape([32, 16]), clip.proj.value).reshape([2, 16, 24]));
      expect(
        maxAbsDiff(
          tf.tidy(() => t.features.slice([0, 1, 0], [2, 16, 24])),
          projTokens,
        ),
      ).toBeLessThan(1e-5);
      // the importance is the class token's attention over the patches: positive, summing below 1 (the rest is on itself)
      for (const s of t.importance!.sum(1).dataSync()) {
        expect(s).toBeGreaterThan(0);
        expect(s).toBeLessThan(1);
      }
      // unprojected tokens: ln_post only
      const wide = clipTeacher(clip, { projected: false })(x);
      expect(wide.features.shape).toEqual([2, 17, 16]);
      expect(
        maxAbsDiff(
          tf.tidy(() => wide.features.slice([0, 1, 0], [2, 16, 16])),
          tokens,
        ),
      ).toBeLessThan(1e-5);
      // computed outside the tape: no gradient reaches what feeds the teacher
      const v = tf.variable(tf.onesLike(x));
      const { value, grads } = tf.variableGrads(() => {
        const o = teacher(tf.mul(x, v));
        return tf.add(tf.sum(o.features), tf.sum(o.importance!)) as tf.Scalar;
      }, [v]);
      expect(tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0])).toBe(0);
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      const g = tf.grad((a: tf.Tensor) => tf.sum(noGrad((u) => tf.square(u), a)))(x);
      expect(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])).toBe(0);
      tf.dispose([
        x,
        t.features,
        t.importance!,
        pooled,
        tokens,
        projTokens,
        wide.features,
        wide.importance!,
        v,
        value,
        g,
        ...Object.values(grads),
      ]);
      clip.dispose();
    });

    it('MILAN with a CLIP teacher end to end: gradients everywhere, 30 steps lower the loss, teacher bit-identical, no leak', () => {
      const clip = tinyClip(42);
      const model = seeded(43, () => milan(vit(TINY_VIT), { teacher: clip, decoderDim: 16, decoderDepth: 1, decoderNumHeads: 2 }));
      expect(model.opts.teacherDim).toBe(24);
      expect(model.namedParameters().some(([n]) => n.startsWith('visual') || n.includes('transformer.resblocks'))).toBe(false);
      expect(
        model
          .namedParameters()
          .filter(([, p]) => !p.trainable)
          .map(([n]) => n),
      ).toEqual(['decoder_pos_embed']);
      const x = smoothImages(2, 32, 4);
      expectGradientsEverywhere(model, () => model.loss(x, { seed: 1, training: true }));
      // loss(x, { seed }) is loss with the teacher's features and its semantic masking
      const t = model.teacher!(x);
      const masking = model.generateMasking(2, 1, t.importance);
      const a = model.loss(x, { seed: 1 });
      const b = model.loss(x, { masking, target: t.features });
      expect(maxAbsDiff(a, b)).toBe(0);
      tf.dispose([x, t.features, t.importance!, a, b, ...Object.values(masking)]);

      const teacherBefore = bytes(clip);
      const counts: number[] = [];
      const data = smoothImages(8, 32, 7);
      const trainer = new Trainer({
        model,
        lr: 1e-2,
        warmupSteps: 3,
        seed: 5,
        loss: (bt: tf.Tensor, ctx) => model.loss(bt, { seed: ctx.rng, training: true }),
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
      expect(new Set(counts.slice(1)).size).toBe(1);
      const { first, last } = firstLast(infos);
      console.log(
        `MILAN + CLIP teacher [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`,
      );
      expect(last).toBeLessThan(0.8 * first);
      const teacherAfter = bytes(clip);
      for (const k of Object.keys(teacherBefore)) expect(teacherAfter[k].equals(teacherBefore[k]), k).toBe(true);
      expect(clip.trainableVariables()).toEqual([]);
      tf.dispose(data);
      trainer.dispose();
      model.dispose();
      clip.dispose();
    });

    it('EVA with a CLIP teacher end to end: gradients everywhere, 30 steps lower the loss, teacher bit-identical, no leak', () => {
      const clip = tinyClip(44);
      const model = seeded(45, () => evaPretrain(vit(TINY_VIT), { teacher: clip, numMaskingPatches: 6 }));
      expect(model.teacherDim).toBe(24);
      expect(
        model
          .namedParameters()
          .map(([n]) => n)
          .filter((n) => !n.startsWith('encoder.')),
      ).toEqual(['mask_token', 'lm_head.weight', 'lm_head.bias']);
      const x = smoothImages(2, 32, 8);
      const mask = model.generateMask(2, 3);
      expect(mask.shape).toEqual([2, 4, 4]);
      for (const s of mask.sum([1, 2]).dataSync()) expect(s).toBeLessThanOrEqual(6);
      expectGradientsEverywhere(model, () => model.loss(x, { mask, training: true }));
      // the default target is the teacher's patch features (class token dropped)
      const t = model.teacher!(x);
      const target = tf.tidy(() => t.features.slice([0, 1, 0], [2, 16, 24]));
      const a = model.loss(x, { mask });
      const b = model.loss(x, { mask, target });
      expect(maxAbsDiff(a, b)).toBe(0);
      tf.dispose([x, mask, t.features, t.importance!, target, a, b]);

      const teacherBefore = bytes(clip);
      const counts: number[] = [];
      const data = smoothImages(8, 32, 9);
      const trainer = new Trainer({
        model,
        lr: 1e-2,
        warmupSteps: 3,
        seed: 6,
        loss: (bt: tf.Tensor, ctx) => model.loss(bt, { seed: ctx.rng, training: true }),
        onStep: () => counts.push(tf.memory().numTensors),
      });
      const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
      expect(new Set(counts.slice(1)).size).toBe(1);
      const { first, last } = firstLast(infos);
      // negative cosine: from about 0 towards -1
      console.log(`EVA + CLIP teacher [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)}`);
      expect(last).toBeLessThan(first - 0.2);
      const teacherAfter = bytes(clip);
      for (const k of Object.keys(teacherBefore)) expect(teacherAfter[k].equals(teacherBefore[k]), k).toBe(true);
      tf.dispose(data);
      trainer.dispose();
      model.dispose();
      clip.dispose();
    });
  });
}

describe('CLIP teacher input checks', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('wrong geometry, widths, missing targets and CoCa-style towers raise clear errors', () => {
    const clip = tinyClip(46);
    expectError(
      () => milan(vit({ ...TINY_VIT, patchSize: 4 }), { teacher: clip, decoderDim: 16, decoderDepth: 1, decoderNumHeads: 2 }),
      /the CLIP teacher's patch grid 4x4 differs from the student's 8x8/,
    );
    expectError(
      () => milan(vit(TINY_VIT), { teacher: clip, teacherDim: 16, decoderDim: 16, decoderDepth: 1, decoderNumHeads: 2 }),
      /teacherDim 16 differs from the CLIP teacher's feature width 24/,
    );
    expectError(
      () => evaPretrain(vit({ ...TINY_VIT, patchSize: 4 }), { teacher: clip }),
      /patch grid 4x4 differs from the student's output grid 8x8/,
    );
    expectError(() => evaPretrain(vit(TINY_VIT)), /teacherDim must be a positive integer \(or give a teacher\)/);
    const plain = evaPretrain(vit(TINY_VIT), { teacherDim: 24 });
    const x = tf.zeros([2, 32, 32, 3]);
    expectError(() => plain.loss(x), /pass \{ target \} or build the model with a CLIP teacher/);
    const badT = tf.zeros([2, 16, 8]);
    expectError(() => plain.loss(x, { target: badT }), /expected teacher features \[2, 16, 24\]/);
    const m = milan(vit(TINY_VIT), { teacherDim: 24, decoderDim: 16, decoderDepth: 1, decoderNumHeads: 2 });
    expectError(() => m.loss(x), /pass \{ masking, target \} or build the model with a CLIP teacher/);
    const pooled = clipVisionTransformer({
      imageSize: 32,
      patchSize: 8,
      width: 16,
      layers: 1,
      heads: 2,
      outputDim: 24,
      attentionalPool: true,
      attnPoolerQueries: 4,
    });
    expectError(() => clipTeacher(pooled), /without attentional pooler/);
    tf.dispose([x, badT]);
    [clip, plain, m, pooled].forEach((u) => u.dispose());
  });
});
