import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { manualSeed } from '../../src/layers/init.js';
import { cswin, CSWinConfig } from '../../src/models/cswin/index.js';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { trainSteps } from '../helpers/training.js';

let fx: Fixture;
beforeAll(async () => {
  await useBackend('cpu');
  fx = loadFixture('cswin_64');
});
afterAll(() => fx.dispose());

describeFixtureParity('cswin_64', cswin, { label: 'CSWin' });

for (const backend of BACKENDS) {
  describe(`CSWin featuresOnly on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('featuresOnly returns NHWC stage maps with featureInfo channels and strides', () => {
      const model = cswin({ ...fx.case.config, featuresOnly: true, outIndices: [0, -1] });
      loadTimmWeights(model, fx.weightsBytes!);
      expect(model.featureInfo.map((f) => [f.numChs, f.reduction, f.module])).toEqual([
        [12, 4, 'stage1'],
        [24, 8, 'stage2'],
        [48, 16, 'stage3'],
        [96, 32, 'stage4'],
      ]);
      const x = nchwToNhwc(fx.io.input);
      const maps = model.forward(x) as tf.Tensor4D[];
      expect(maps.map((m) => m.shape)).toEqual([
        [2, 16, 16, 12],
        [2, 2, 2, 96],
      ]);
      const exp = nchwToNhwc(fx.io['features.3']);
      expect(compare(maps[1], exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([x, exp, ...maps]);
      model.dispose();
    });
  });
}

describe('CSWin heads and variants', () => {
  it('a head-less model skips the classifier keys; resetClassifier swaps the head', () => {
    const model = cswin({ ...fx.case.config, numClasses: 0 });
    const res = loadTimmWeights(model, fx.weightsBytes!);
    expect(res.skipped.sort()).toEqual(['head.bias', 'head.weight']);
    model.resetClassifier(5);
    const x = tf.zeros([1, 64, 64, 3]);
    const y = model.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 5]);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('registers the official variants with their configs', () => {
    expect(listModels('cswin*')).toEqual([
      'cswin_base_224',
      'cswin_base_384',
      'cswin_large_224',
      'cswin_large_384',
      'cswin_small_224',
      'cswin_tiny_224',
    ]);
    const t = getModelEntry('cswin_tiny_224');
    expect(t.config).toMatchObject({ embedDim: 64, depth: [1, 2, 21, 1], splitSize: [1, 2, 7, 7], numHeads: [2, 4, 8, 16], imgSize: 224 });
    expect(getModelEntry('cswin_large_384').config).toMatchObject({
      imgSize: 384,
      embedDim: 144,
      splitSize: [1, 2, 12, 12],
      numHeads: [6, 12, 24, 24],
    });
    expect(getModelEntry('cswin_base_384').pretrainedCfg.inputSize).toEqual([3, 384, 384]);
    const m = createModel('cswin_tiny_224', { numClasses: 0 });
    expect(m.featureInfo.map((f) => f.numChs)).toEqual([64, 128, 256, 512]);
    expect((m as ReturnType<typeof cswin>).resolutions).toEqual([
      [56, 56],
      [28, 28],
      [14, 14],
      [7, 7],
    ]);
    // stage 3 of the 224 models: 14x14 map, split 7 -> two stripe branches; stage 4 full attention
    const blocks = (m as ReturnType<typeof cswin>).stages.map((s) => s.items[0].attn.branches);
    expect(blocks).toEqual([2, 2, 2, 1]);
    m.dispose();
  });
});

describe('CSWin clear errors', () => {
  const base: CSWinConfig = { embedDim: 12, depth: [1, 1, 1, 1], splitSize: [1, 2, 7, 7], numHeads: [2, 2, 4, 4], numClasses: 0 };
  it('image size that does not give consistent stage resolutions', () => {
    expect(() => cswin({ ...base, imgSize: 100 })).toThrow(VisBackbonesError);
    expect(() => cswin({ ...base, imgSize: 100 })).toThrow(/imgSize 100x100 does not give consistent stage resolutions/);
  });
  it('splitSize that does not divide a stage resolution', () => {
    // 96 px: stage 3 is 6x6, split 7
    expect(() => cswin({ ...base, imgSize: 96 })).toThrow(/splitSize\[2\] = 7 does not divide stage 3's 6x6 token map/);
  });
  it('heads that do not split evenly between the stripe directions', () => {
    expect(() => cswin({ ...base, imgSize: 224, numHeads: [3, 2, 4, 4], embedDim: 12 })).toThrow(
      /numHeads\[0\] = 3 cannot be split evenly/,
    );
  });
  it('an input of another size than imgSize', () => {
    const m = cswin({ ...base, imgSize: 224, splitSize: [1, 2, 7, 7] });
    const x = tf.zeros([1, 64, 64, 3]);
    expect(() => m.forward(x)).toThrow(/expected 224x224 input \(imgSize\), got 64x64/);
    x.dispose();
    m.dispose();
  });
});

describe('CSWin training on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  it('a tiny CSWin: every trainable variable gets a gradient, the loss falls over 10 steps, no leak', async () => {
    manualSeed(7);
    // 32 px: stages 8x8 (stripes of 1), 4x4 (stripes of 2), 2x2 (= split: full), 1x1 (full)
    const model = cswin({ imgSize: 32, embedDim: 12, depth: [1, 2, 1, 1], splitSize: [1, 2, 2, 2], numHeads: [2, 2, 4, 4], numClasses: 4 });
    expect(model.stages.map((s) => s.items[0].attn.branches)).toEqual([2, 2, 1, 1]);
    const x = tf.tidy(() => tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3));
    const labels = tf.oneHot(tf.tensor1d([1, 3], 'int32'), 4);
    const opt = tf.train.sgd(0.05);
    const lossFn = () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const { losses, kernels } = await trainSteps(model, lossFn, opt, 10);
    // the conv gradients run on the kernels registered for wasm (stem / merge convs, LePE)
    for (const k of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'])
      expect(kernels.has(k), k).toBe(true);
    console.log(`tiny CSWin wasm losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    expect(losses[9]).toBeLessThan(losses[0]);
    expect(losses.every((l) => Number.isFinite(l))).toBe(true);
    tf.dispose([x, labels]);
    opt.dispose();
    model.dispose();
  });
});
