import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileMatcher } from '../../src/models/groupMatcher.js';
import { createModel, getFamily, getModelEntry, listModels } from '../../src/models/registry.js';
import '../../src/models/pvt/index.js';
import { pvt, PvtConfig } from '../../src/models/pvt/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { checkBackboneTrainingStep, trainSteps } from '../helpers/training.js';

const CASE = 'pvt_64';

describeFixtureParity(CASE, pvt, { label: 'PVT', headKeys: ['head.bias', 'head.weight'] });

for (const backend of BACKENDS) {
  describe(`PVT on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('one training step reaches every trainable variable and leaks nothing', () => {
      const model = pvt({ ...fx.case.config, dropPathRate: 0.1, dropRate: 0.1 } as PvtConfig);
      loadTimmWeights(model, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      checkBackboneTrainingStep(model, x, `pvt on ${backend}`);
      x.dispose();
      model.dispose();
    });

    it('the loss falls over a few SGD steps without leaking', async () => {
      const model = pvt(fx.case.config as PvtConfig);
      loadTimmWeights(model, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      const y = tf.oneHot(tf.tensor1d([2, 7], 'int32'), 10);
      const opt = tf.train.sgd(0.05);
      const { losses } = await trainSteps(
        model,
        () => tf.losses.softmaxCrossEntropy(y, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar,
        opt,
        4,
      );
      expect(losses[3]).toBeLessThan(losses[0]);
      tf.dispose([x, y]);
      opt.dispose();
      model.dispose();
    });

    it('another input size: the run-time bilinear resize equals resizing the tables at load time', () => {
      // the reference resizes pos_embed{s} per forward when the grid differs; a model built for the new
      // size with the checkpoint filter's (same) resize stores the tables at that grid
      const ref = pvt(fx.case.config as PvtConfig);
      loadTimmWeights(ref, fx.weightsBytes!);
      const big = pvt({ ...fx.case.config, imgSize: 96 } as PvtConfig);
      loadTimmWeights(big, fx.weightsBytes!);
      const x = tf.randomNormal([1, 96, 96, 3], 0, 1, 'float32', 4);
      const before = tf.memory().numTensors;
      const a = ref.forward(x) as tf.Tensor;
      const b = big.forward(x) as tf.Tensor;
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(a.shape).toEqual([1, 10]);
      expect(compare(a, b, 1e-5, 1e-5).worstExcess).toBeLessThanOrEqual(0);
      // odd sizes floor in every patch embedding and spatial reduction: 70 px -> grids 17, 8, 4, 2
      const odd = tf.randomNormal([1, 70, 70, 3], 0, 1, 'float32', 5);
      const fo = pvt({ ...fx.case.config, featuresOnly: true } as PvtConfig);
      const maps = fo.forward(odd) as tf.Tensor4D[];
      expect(maps.map((m) => m.shape)).toEqual([
        [1, 17, 17, 8],
        [1, 8, 8, 16],
        [1, 4, 4, 32],
        [1, 2, 2, 64],
      ]);
      tf.dispose([x, a, b, odd, ...maps]);
      fo.dispose();
      ref.dispose();
      big.dispose();
    });
  });
}

describe('PVT configs and variants', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('registers the official variants with their architectures', () => {
    expect(listModels('pvt_*').filter((n) => !n.startsWith('pvt_v2'))).toEqual(['pvt_large', 'pvt_medium', 'pvt_small', 'pvt_tiny']);
    expect(getModelEntry('pvt_large').config).toMatchObject({
      depths: [3, 8, 27, 3],
      embedDims: [64, 128, 320, 512],
      normEps: 1e-6,
      qkvBias: true,
    });
    const m = createModel('pvt_tiny');
    expect((m.numParams() / 1e6).toFixed(2)).toBe('13.23');
    expect((m.config as PvtConfig).patchSize).toBe(4);
    expect(m.featureInfo).toEqual([
      { numChs: 64, reduction: 4, module: 'block1' },
      { numChs: 128, reduction: 8, module: 'block2' },
      { numChs: 320, reduction: 16, module: 'block3' },
      { numChs: 512, reduction: 32, module: 'block4' },
    ]);
    // the resolved config rebuilds the same model
    const again = getFamily('pvt').create(m.config);
    expect(again.numParams()).toBe(m.numParams());
    again.dispose();
    m.dispose();
  });

  it('pvt_tiny featuresOnly: NHWC stage maps at strides 4..32 for FPN / RetinaNet', () => {
    const m = createModel('pvt_tiny', { featuresOnly: true, outIndices: [1, 2, 3] });
    const x = tf.zeros([1, 128, 160, 3]);
    const before = tf.memory().numTensors;
    const maps = m.forward(x) as tf.Tensor4D[];
    expect(maps.map((t) => t.shape)).toEqual([
      [1, 16, 20, 128],
      [1, 8, 10, 320],
      [1, 4, 5, 512],
    ]);
    tf.dispose(maps);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });

  it('groupMatcher, noWeightDecay, derivedBuffers', () => {
    const m = pvt({ depths: [1, 2, 1, 1], embedDims: [8, 16, 32, 64], numClasses: 3, patchSize: 4, imgSize: 64 });
    const fine = compileMatcher(m.groupMatcher());
    expect(fine('patch_embed1.proj.weight')).toEqual([0]);
    expect(fine('pos_embed1')).toEqual([0]);
    expect(fine('pos_embed2')).toEqual([1, 2, 0]);
    expect(fine('block2.1.attn.q.weight')).toEqual([1, 2, 1]);
    expect(fine('cls_token')).toEqual([1, 4, 0]);
    expect(fine('norm.weight')).toEqual([1, 99999]);
    const coarse = compileMatcher(m.groupMatcher(true));
    // coarse groups are the stage levels (0-based; the official names count from 1): freezeStages reads them
    expect(coarse('block3.0.mlp.fc1.weight')).toEqual([1, 2]);
    expect(coarse('patch_embed3.norm.bias')).toEqual([1, 2]);
    expect(coarse('pos_embed2')).toEqual([1, 1]);
    expect(coarse('cls_token')).toEqual([1, 3]);
    expect(m.noWeightDecay()).toEqual(['cls_token']);
    expect(m.derivedBuffers()).toEqual([]);
    m.dispose();
  });

  it('checkpointFilter resizes position tables of another imgSize (class-token row kept)', () => {
    const fx = loadFixture(CASE);
    const sd = readSafetensors(fx.weightsBytes!);
    const m = pvt({ ...fx.case.config, imgSize: 96 } as PvtConfig);
    const res = loadTimmWeights(m, sd);
    expect(res.skipped).toEqual([]);
    const out = m.stateDict();
    expect(out.pos_embed1.shape).toEqual([1, 576, 8]);
    expect(out.pos_embed4.shape).toEqual([1, 10, 64]);
    expect(compare(out.pos_embed4.slice([0, 0, 0], [1, 1, 64]), sd.pos_embed4.slice([0, 0, 0], [1, 1, 64]), 0, 0).maxAbsErr).toBe(0);
    tf.dispose([...Object.values(sd), ...Object.values(out)]);
    m.dispose();
    fx.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const base: PvtConfig = {
      imgSize: 64,
      patchSize: 4,
      depths: [1, 1, 1, 1],
      embedDims: [8, 16, 32, 64],
      numHeads: [1, 2, 4, 8],
      numClasses: 10,
    };
    expectError(() => pvt({ ...base, numHeads: [1, 3, 4, 8] }), /numHeads\[1\] = 3 does not divide embedDims\[1\] = 16/);
    expectError(() => pvt({ ...base, embedDims: [8, 16, 32] }), /embedDims must list one value per stage \(4\)/);
    expectError(() => pvt({ ...base, srRatios: [8, 4, 2, 2] }), /srRatios\[3\] = 2: the last stage attends over its class token/);
    expectError(() => pvt({ ...base, numStages: 3 }), /numStages = 3 is not supported/);
    expectError(() => pvt({ ...base, imgSize: 0 }), /imgSize must be a positive integer/);
    const m = pvt(base);
    const small = tf.zeros([1, 24, 24, 3]);
    expectError(() => m.forward(small), /gives stage 0 a 6x6 token grid, smaller than its srRatio 8/);
    const badC = tf.zeros([1, 64, 64, 1]);
    expectError(() => m.forward(badC), /expected 3 input channels/);
    // 128 px: stage 1 has 16x16 tokens, as many as stage 0 at imgSize 64: the reference fails there
    const clash = tf.zeros([1, 128, 128, 3]);
    expectError(() => m.forward(clash), /adds pos_embed2 \(64 rows\) unresized and fails/);
    tf.dispose([small, badC, clash]);
    m.dispose();
  });
});
