import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { vit, VisionTransformer } from '../../src/models/vit/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { stepAndCheckGradients } from '../helpers/training.js';

const FIXTURE = 'vit_p8_32';

function loaded(fx: Fixture, overrides: Record<string, unknown> = {}): VisionTransformer {
  const model = vit({ ...fx.case.config, ...overrides });
  loadTimmWeights(model, fx.weightsBytes!);
  return model;
}

describeFixtureParity(FIXTURE, vit, { label: 'ViT' });

for (const backend of BACKENDS) {
  describe(`ViT on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(FIXTURE);
    });
    afterAll(() => fx.dispose());

    it('featuresOnly returns the NHWC block maps of outIndices (head weights skipped)', () => {
      const model = loaded(fx, { featuresOnly: true, outIndices: [-1] });
      expect(model.numClasses).toBe(0);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const out = model.forward(x) as tf.Tensor4D[];
      expect(out.length).toBe(1);
      const exp = nchwToNhwc(fx.io['features.1']);
      expect(compare(out[0], exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([...out, exp]);
      expect(tf.memory().numTensors).toBe(before);
      expect(model.featureInfo.map((f) => [f.numChs, f.reduction, f.module])).toEqual([
        [32, 8, 'blocks.0'],
        [32, 8, 'blocks.1'],
      ]);
      x.dispose();
      model.dispose();
    });

    it('dynamicImgSize resamples the position embedding per input: a 48 px input equals a 48 px model loaded from the 32 px weights', () => {
      const dyn = loaded(fx, { dynamicImgSize: true });
      const big = vit({ ...fx.case.config, imgSize: 48 });
      loadTimmWeights(big, fx.weightsBytes!);
      const x = tf.randomNormal([2, 48, 48, 3], 0, 1, 'float32', 5);
      const before = tf.memory().numTensors;
      const a = dyn.forward(x) as tf.Tensor;
      const b = big.forward(x) as tf.Tensor;
      expect(compare(a, b, 1e-5, 1e-5).worstExcess).toBeLessThanOrEqual(0);
      // at the native size the dynamic model is the plain one
      const x32 = nchwToNhwc(fx.io.input);
      const c = dyn.forward(x32) as tf.Tensor;
      expect(compare(c, fx.io.logits, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([a, b, c, x32]);
      expect(tf.memory().numTensors).toBe(before);
      // a non-square input works too
      const z = tf.zeros([1, 24, 40, 3]);
      const y = dyn.forwardIntermediates(z, { intermediatesOnly: true });
      expect(y[0].shape).toEqual([1, 3, 5, 32]);
      tf.dispose([x, z, ...y]);
      dyn.dispose();
      big.dispose();
    });

    it('one training step: every trainable variable gets a gradient, nothing leaks (token pool; avg pool + fc_norm, layer scale, qk norm, registers, dynamic size)', () => {
      const configs = [
        { cfg: { ...fx.case.config, dropPathRate: 0.1 }, size: 32 },
        // 40 px on a 32 px model: the resampled position embedding is in the graph
        { cfg: { ...fx.case.config, globalPool: 'avg', initValues: 0.1, qkNorm: true, regTokens: 2, dynamicImgSize: true }, size: 40 },
      ];
      for (const { cfg, size } of configs) {
        const model = vit(cfg);
        const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1);
        const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
        const opt = tf.train.sgd(0.01);
        const before = tf.memory().numTensors;
        const loss = () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar;
        const l0 = stepAndCheckGradients(model, loss, opt);
        expect(Number.isFinite(l0)).toBe(true);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([x, labels]);
        opt.dispose();
        model.dispose();
      }
    });
  });
}

describe('ViT variants and errors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it("registers timm's ViT variants with their configs", () => {
    const names = listModels('vit_*');
    for (const n of [
      'vit_tiny_patch16_224',
      'vit_tiny_patch16_384',
      'vit_small_patch16_224',
      'vit_small_patch16_384',
      'vit_base_patch16_224',
      'vit_base_patch16_384',
      'vit_large_patch16_224',
      'vit_large_patch16_384',
      'vit_base_patch32_224',
    ])
      expect(names).toContain(n);
    expect(getModelEntry('vit_large_patch16_384').config).toMatchObject({ imgSize: 384, embedDim: 1024, depth: 24, numHeads: 16 });
    expect(getModelEntry('vit_base_patch32_224').config).toMatchObject({ patchSize: 32, embedDim: 768 });
    expect(getModelEntry('vit_small_patch16_384').pretrainedCfg).toMatchObject({
      inputSize: [3, 384, 384],
      cropPct: 1.0,
      mean: [0.5, 0.5, 0.5],
    });
  });

  it('vit_tiny_patch16_224 has the parameter count of its architecture and the timm key set', () => {
    const m = createModel('vit_tiny_patch16_224');
    const d = 192;
    const perBlock = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
    const expected = 3 * 16 * 16 * d + d + d + 197 * d + 12 * perBlock + 2 * d + (d * 1000 + 1000);
    expect(m.numParams()).toBe(expected);
    const keys = m.namedParameters().map(([n]) => n);
    expect(keys.slice(0, 4)).toEqual(['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']);
    expect(keys).toContain('blocks.11.mlp.fc2.bias');
    expect(keys.slice(-4)).toEqual(['norm.weight', 'norm.bias', 'head.weight', 'head.bias']);
    m.dispose();
  });

  it('resetClassifier swaps the head; avg pooling moves the final norm to fc_norm', () => {
    const m = vit({ imgSize: 16, patchSize: 8, embedDim: 8, depth: 1, numHeads: 2, numClasses: 5, globalPool: 'avg' });
    const keys = m.namedParameters().map(([n]) => n);
    expect(keys).toContain('fc_norm.weight');
    expect(keys).not.toContain('norm.weight');
    m.resetClassifier(0);
    expect(
      m
        .namedParameters()
        .map(([n]) => n)
        .some((n) => n.startsWith('head')),
    ).toBe(false);
    const x = tf.zeros([1, 16, 16, 3]);
    const y = m.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 8]);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const base = { imgSize: 32, patchSize: 8, embedDim: 32, depth: 1 };
    expect(() => vit({ ...base, numHeads: 3 })).toThrow(/numHeads 3 does not divide embedDim 32/);
    expect(() => vit({ ...base, numHeads: 2, classToken: false })).toThrow(/'token' needs classToken/);
    expect(() => vit({ ...base, numHeads: 2, globalPool: 'map' as never })).toThrow(VisBackbonesError);
    expect(() => vit({ ...base, numHeads: 2, imgSize: 30 })).toThrow(/not a positive multiple of patchSize 8/);
    const m = vit({ ...base, numHeads: 2 });
    expect(() => m.forward(tf.zeros([1, 48, 48, 3]))).toThrow(/expected 32x32 input \(imgSize\), got 48x48/);
    expect(() => m.forward(tf.zeros([1, 32, 32, 1]))).toThrow(/expected 3 input channels/);
    m.dispose();
    // a checkpoint whose position grid is not square cannot be resampled without knowing its shape
    const rect = vit({ ...base, numHeads: 2, imgSize: [16, 40] });
    const sd = rect.stateDict();
    const sq = vit({ ...base, numHeads: 2 });
    expect(() => loadTimmWeights(sq, sd)).toThrow(/pos_embed has 10 grid tokens .* not a square grid/);
    tf.dispose(Object.values(sd));
    rect.dispose();
    sq.dispose();
    const d = vit({ ...base, numHeads: 2, dynamicImgSize: true });
    expect(() => d.forward(tf.zeros([1, 36, 32, 3]))).toThrow(/36x32 is not a multiple of patchSize 8/);
    d.dispose();
  });
});
