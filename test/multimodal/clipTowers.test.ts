import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipTextTransformer, clipVisionTransformer } from '../../src/models/clip/index.js';
import type { Module } from '../../src/layers/module.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const TEXT = 'clip_text_ctx16_w32';
const VISION = 'clip_vision_p8_32';

/** Compare `actual` with the stored output `name` under the case's tolerances; returns the max abs error. */
function check(fx: Fixture, name: string, actual: tf.Tensor, expected?: tf.Tensor): number {
  const exp = expected ?? fx.io[name];
  const r = compare(actual, exp, fx.case.atol, fx.case.rtol);
  expect(r.worstExcess, `${name}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
  return r.maxAbsErr;
}

/** writeSafetensors(stateDict()) holds exactly the reference tensors, byte for byte. */
function expectByteIdentical(model: Module, weights: Uint8Array): void {
  const sd = model.stateDict();
  const back = readSafetensors(writeSafetensors(sd));
  const ref = readSafetensors(weights);
  expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
  for (const k of Object.keys(ref)) {
    expect(back[k].shape, k).toEqual(ref[k].shape);
    const a = Buffer.from(new Uint8Array((back[k].dataSync() as Float32Array).slice().buffer));
    const b = Buffer.from(new Uint8Array((ref[k].dataSync() as Float32Array).slice().buffer));
    expect(Buffer.compare(a, b), k).toBe(0);
  }
  tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
}

for (const backend of BACKENDS) {
  describe(`CLIP text tower fixture ${TEXT} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(TEXT);
    });
    afterAll(() => fx.dispose());

    it('text_features, tokens and every text_intermediates.<i> match open_clip', () => {
      const model = clipTextTransformer(fx.case.config);
      const res = loadTimmWeights(model, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual([]);
      const text = fx.io.text;
      const before = tf.memory().numTensors;
      const errs: Record<string, number> = {};
      const feats = model.forward(text);
      errs.text_features = check(fx, 'text_features', feats);
      const { pooled, tokens } = model.forwardTokens(text);
      errs.tokens = check(fx, 'tokens', tokens);
      check(fx, 'text_features', pooled);
      const inter = model.forwardIntermediates(text);
      inter.textIntermediates.forEach((t, i) => {
        errs[`text_intermediates.${i}`] = check(fx, `text_intermediates.${i}`, t);
      });
      check(fx, 'text_features', inter.textFeatures!);
      const only = model.forwardIntermediates(text, { indices: [-1], intermediatesOnly: true });
      expect(only.textFeatures).toBeUndefined();
      check(fx, 'text_intermediates.1', only.textIntermediates[0]);
      tf.dispose([feats, pooled, tokens, ...inter.textIntermediates, inter.textFeatures!, ...only.textIntermediates]);
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(fx.case.outputs).filter((k) => !(k in errs))).toEqual([]);
      console.log(`${TEXT} [${backend}] max abs err ${JSON.stringify(errs)}`);
      model.dispose();
    });

    it('writeSafetensors(stateDict()) reproduces the reference file byte for byte', () => {
      const model = clipTextTransformer(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      expectByteIdentical(model, fx.weightsBytes!);
      model.dispose();
    });
  });

  describe(`CLIP image tower fixture ${VISION} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(VISION);
    });
    afterAll(() => fx.dispose());

    it('image_features, tokens and every image_intermediates.<i> match open_clip', () => {
      const model = clipVisionTransformer(fx.case.config);
      const res = loadTimmWeights(model, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual([]);
      const x = nchwToNhwc(fx.io.image);
      const before = tf.memory().numTensors;
      const errs: Record<string, number> = {};
      const feats = model.forward(x);
      errs.image_features = check(fx, 'image_features', feats);
      const { pooled, tokens } = model.forwardTokens(x);
      errs.tokens = check(fx, 'tokens', tokens);
      check(fx, 'image_features', pooled);
      const inter = model.forwardIntermediates(x);
      inter.imageIntermediates.forEach((t, i) => {
        const exp = nchwToNhwc(fx.io[`image_intermediates.${i}`]);
        errs[`image_intermediates.${i}`] = check(fx, `image_intermediates.${i}`, t, exp);
        exp.dispose();
      });
      check(fx, 'image_features', inter.imageFeatures!);
      tf.dispose([feats, pooled, tokens, ...inter.imageIntermediates, inter.imageFeatures!]);
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(fx.case.outputs).filter((k) => !(k in errs))).toEqual([]);
      console.log(`${VISION} [${backend}] max abs err ${JSON.stringify(errs)}`);
      x.dispose();
      model.dispose();
    });

    it('writeSafetensors(stateDict()) reproduces the reference file byte for byte', () => {
      const model = clipVisionTransformer(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      expectByteIdentical(model, fx.weightsBytes!);
      model.dispose();
    });
  });
}
