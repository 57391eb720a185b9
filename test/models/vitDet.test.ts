import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { vitDet, VisionTransformerSAM } from '../../src/models/vitDet/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { stepAndCheckGradients } from '../helpers/training.js';

const FIXTURE = 'vitdet_w4_64';

function loaded(fx: Fixture, overrides: Record<string, unknown> = {}): VisionTransformerSAM {
  const model = vitDet({ ...fx.case.config, ...overrides });
  loadTimmWeights(model, fx.weightsBytes!);
  return model;
}

describeFixtureParity(FIXTURE, vitDet, { label: 'ViTDet (SAM-style ViT)' });

for (const backend of BACKENDS) {
  describe(`ViTDet (SAM-style ViT) on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(FIXTURE);
    });
    afterAll(() => fx.dispose());

    it('featuresOnly / outIndices return the neck-free NHWC block maps', () => {
      const model = loaded(fx, { featuresOnly: true, outIndices: [0, -1] });
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const out = model.forward(x) as tf.Tensor4D[];
      expect(out.map((t) => t.shape)).toEqual([
        [2, 8, 8, 32],
        [2, 8, 8, 32],
      ]);
      for (const [t, i] of [
        [out[0], 0],
        [out[1], 2],
      ] as const) {
        const exp = nchwToNhwc(fx.io[`features.${i}`]);
        expect(compare(t, exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
        exp.dispose();
      }
      tf.dispose(out);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      model.dispose();
    });

    it('another input size: a 96 px input on the 64 px model equals a 96 px model loaded from the 64 px weights (pos embed and global rel-pos tables resized)', () => {
      const small = loaded(fx);
      const big = loaded(fx, { imgSize: 96 });
      const sd = big.stateDict();
      expect(sd.pos_embed.shape).toEqual([1, 12, 12, 32]);
      expect(sd['blocks.2.attn.rel_pos_h'].shape).toEqual([23, 16]); // global block: 2 * 12 - 1
      expect(sd['blocks.0.attn.rel_pos_h'].shape).toEqual([7, 16]); // windowed block: 2 * 4 - 1, unchanged
      tf.dispose(Object.values(sd));
      const x = tf.randomNormal([1, 96, 96, 3], 0, 1, 'float32', 3);
      const before = tf.memory().numTensors;
      const a = small.forwardFeatures(x);
      const b = big.forwardFeatures(x);
      expect(a.shape).toEqual([1, 12, 12, 16]);
      expect(compare(a, b, 1e-5, 1e-4).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([a, b]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      small.dispose();
      big.dispose();
    });

    it('a grid that is not a multiple of the window is zero-padded (48 px: 6x6 grid, window 4 -> 8x8)', () => {
      const model = loaded(fx);
      const x = tf.randomNormal([2, 48, 48, 3], 0, 1, 'float32', 4);
      const before = tf.memory().numTensors;
      const y = model.forwardIntermediates(x, { intermediatesOnly: true });
      expect(y.map((t) => t.shape)).toEqual([
        [2, 6, 6, 32],
        [2, 6, 6, 32],
        [2, 6, 6, 32],
      ]);
      expect(y.every((t) => tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0]) === 1)).toBe(true);
      // padding must not leak across images or change results of the unpadded part's own image
      const x1 = x.slice([1, 0, 0, 0], [1, -1, -1, -1]);
      const single = model.forwardIntermediates(x1, { intermediatesOnly: true });
      const tail = y[2].slice([1, 0, 0, 0], [1, -1, -1, -1]);
      expect(compare(single[2], tail, 1e-5, 1e-5).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([...y, ...single, tail, x1]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      model.dispose();
    });

    it('one training step: every trainable variable (neck 3x3 conv included) gets a gradient, nothing leaks', () => {
      for (const cfg of [
        { ...fx.case.config, dropPathRate: 0.1 },
        { ...fx.case.config, imgSize: 48, neckChans: null, initValues: 0.1, qkNorm: true, globalAttnIndexes: [0] },
      ]) {
        const model = vitDet(cfg);
        // zero-initialised tables and pos embed are legitimate parameters: give them values first
        const sd = model.stateDict();
        const init: Record<string, tf.Tensor> = {};
        for (const [k, v] of Object.entries(sd)) if (/rel_pos|pos_embed/.test(k)) init[k] = tf.randomNormal(v.shape, 0, 0.1, 'float32', 1);
        model.loadStateDict(init, { strict: false });
        tf.dispose([...Object.values(sd), ...Object.values(init)]);
        const size = cfg.imgSize as number;
        const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 2);
        const labels = tf.oneHot(tf.tensor1d([1, 8], 'int32'), 10);
        const opt = tf.train.sgd(0.01);
        const before = tf.memory().numTensors;
        const loss = () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar;
        const l = stepAndCheckGradients(model, loss, opt);
        expect(Number.isFinite(l)).toBe(true);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([x, labels]);
        opt.dispose();
        model.dispose();
      }
    });
  });
}

describe('ViTDet checkpoints, variants and errors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('an original SAM checkpoint (image_encoder.*, mlp.lin1/lin2, prompt/mask decoder keys) loads', () => {
    const fx = loadFixture(FIXTURE);
    const ref = readSafetensors(fx.weightsBytes!);
    const sam: Record<string, tf.Tensor> = { 'prompt_encoder.pe_layer.gaussian': tf.zeros([2, 2]) };
    for (const [k, v] of Object.entries(ref)) if (!k.startsWith('head.')) sam[`image_encoder.${k.replace('mlp.fc', 'mlp.lin')}`] = v;
    const model = vitDet({ ...fx.case.config, numClasses: 0 });
    const res = loadTimmWeights(model, sam);
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors - 2);
    const x = nchwToNhwc(fx.io.input);
    const y = model.forwardFeatures(x);
    const exp = nchwToNhwc(fx.io.forward_features);
    expect(compare(y, exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    tf.dispose([x, y, exp, ...Object.values(sam)]);
    model.dispose();
    fx.dispose();
  });

  it("registers timm's SAM variants; samvit_base_patch16_224 has no abs pos embed and a LayerNorm2d neck", () => {
    expect(listModels('samvit*')).toEqual([
      'samvit_base_patch16',
      'samvit_base_patch16_224',
      'samvit_huge_patch16',
      'samvit_large_patch16',
    ]);
    expect(getModelEntry('samvit_large_patch16').config).toMatchObject({
      embedDim: 1024,
      depth: 24,
      numHeads: 16,
      globalAttnIndexes: [5, 11, 17, 23],
      windowSize: 14,
      imgSize: 1024,
    });
    expect(getModelEntry('samvit_huge_patch16').pretrainedCfg).toMatchObject({ inputSize: [3, 1024, 1024], numClasses: 0 });
    // the 224 variant's structure, at a small width
    const m = createModel('samvit_base_patch16_224', { embedDim: 32, depth: 3, numHeads: 2, globalAttnIndexes: [2] });
    const keys = m.namedParameters().map(([n]) => n);
    expect(keys).not.toContain('pos_embed');
    expect(keys).toContain('neck.weight');
    expect(keys).toContain('head.fc.weight');
    expect(m.stateDict()['blocks.2.attn.rel_pos_w'].shape).toEqual([27, 16]); // global: 2 * 14 - 1
    const x = tf.zeros([1, 224, 224, 3]);
    const y = m.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 1000]);
    tf.dispose([x, y]);
    m.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const base = { imgSize: 64, patchSize: 8, embedDim: 32, depth: 3, numHeads: 2, windowSize: 4, globalAttnIndexes: [2], neckChans: 16 };
    expect(() => vitDet({ ...base, numHeads: 3 })).toThrow(/numHeads 3 does not divide embedDim 32/);
    expect(() => vitDet({ ...base, globalAttnIndexes: [3] })).toThrow(
      /globalAttnIndexes entry 3 is out of range: expected block indices 0..2/,
    );
    expect(() => vitDet({ ...base, globalAttnIndexes: [-1] })).toThrow(/entry -1 is out of range/);
    expect(() => vitDet({ ...base, windowSize: 16, windowPadding: false })).toThrow(
      /windowSize 16 is larger than the token grid 8x8.*windowPadding is false/,
    );
    expect(() => vitDet({ ...base, windowSize: 3, windowPadding: false })).toThrow(/windowSize 3 does not divide the token grid 8x8/);
    expect(() => vitDet({ ...base, windowSize: -2 })).toThrow(/windowSize must be a non-negative integer/);
    expect(() => vitDet({ ...base, imgSize: 60 })).toThrow(/imgSize 60 is not a positive multiple of patchSize 8/);
    expect(() => vitDet({ ...base, globalPool: 'token' as never })).toThrow(/globalPool 'token' is not supported/);
    // with padding (the default, as timm) a window larger than the grid is valid
    const padded = vitDet({ ...base, windowSize: 16 });
    padded.dispose();
    const m = vitDet({ ...base, windowPadding: false });
    const bad = tf.zeros([1, 60, 64, 3]);
    const odd = tf.zeros([1, 48, 48, 3]);
    expect(() => m.forward(bad)).toThrow(/input 60x64 is not a multiple of patchSize 8/);
    expect(() => m.forward(odd)).toThrow(/windowSize 4 does not divide the token grid 6x6/);
    tf.dispose([bad, odd]);
    m.dispose();
  });
});
