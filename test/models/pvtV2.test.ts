import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import '../../src/models/pvtV2/index.js';
import { pvtV2, PvtV2Config } from '../../src/models/pvtV2/pyramidVisionTransformerV2.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { checkBackboneTrainingStep } from '../helpers/training.js';

const CASE = 'pvtv2_64';

describeFixtureParity(CASE, pvtV2, { label: 'PVT v2', headKeys: ['head.bias', 'head.weight'] });

for (const backend of BACKENDS) {
  describe(`PVT v2 on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('one training step reaches every trainable variable and leaks nothing (sr and linear attention)', () => {
      for (const cfg of [fx.case.config as PvtV2Config, { ...(fx.case.config as PvtV2Config), linear: true }]) {
        const model = pvtV2(cfg);
        if (!cfg.linear) loadTimmWeights(model, fx.weightsBytes!); // the linear variant keeps its own init
        const x = nchwToNhwc(fx.io.input);
        checkBackboneTrainingStep(model, x, `pvtV2 linear=${cfg.linear} on ${backend}`);
        x.dispose();
        model.dispose();
      }
    });
  });
}

describe('PVT v2 configs and variants', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('registers timm’s variants with their architectures', () => {
    expect(listModels('pvt_v2*')).toEqual(['pvt_v2_b0', 'pvt_v2_b1', 'pvt_v2_b2', 'pvt_v2_b2_li', 'pvt_v2_b3', 'pvt_v2_b4', 'pvt_v2_b5']);
    expect(getModelEntry('pvt_v2_b5').config).toMatchObject({ depths: [3, 6, 40, 3], mlpRatios: [4, 4, 4, 4] });
    const m = createModel('pvt_v2_b2_li', { numClasses: 0 });
    const keys = Object.keys(Object.fromEntries(m.namedParameters()));
    expect(keys).toContain('stages.0.blocks.0.attn.sr.weight');
    expect(m.featureInfo.map((f) => [f.numChs, f.reduction])).toEqual([
      [64, 4],
      [128, 8],
      [320, 16],
      [512, 32],
    ]);
    // linear SRA: a 1x1 conv and no strided reduction, in every stage including the last
    const sr = m.namedParameters().find(([k]) => k === 'stages.3.blocks.0.attn.sr.weight')![1];
    expect(sr.torchShape).toEqual([512, 512, 1, 1]);
    m.dispose();
  });

  it('pvt_v2_b0 at 224: stage maps of the documented shapes', () => {
    const m = createModel('pvt_v2_b0', { featuresOnly: true });
    const x = tf.zeros([1, 224, 224, 3]);
    const before = tf.memory().numTensors;
    const maps = m.forward(x) as tf.Tensor4D[];
    expect(maps.map((t) => t.shape)).toEqual([
      [1, 56, 56, 32],
      [1, 28, 28, 64],
      [1, 14, 14, 160],
      [1, 7, 7, 256],
    ]);
    tf.dispose(maps);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    m.dispose();
  });

  it('loads an official (non-timm) checkpoint layout through the checkpoint filter', () => {
    const fx = loadFixture(CASE);
    const ref = readSafetensors(fx.weightsBytes!);
    const official: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(ref)) {
      const o = k
        .replace(/^patch_embed\./, 'patch_embed1.')
        .replace(/^stages\.(\d)\.downsample\./, (_, i) => `patch_embed${Number(i) + 1}.`)
        .replace(/^stages\.(\d)\.blocks\.(\d+)\./, (_, i, j) => `block${Number(i) + 1}.${j}.`)
        .replace(/^stages\.(\d)\.norm\./, (_, i) => `norm${Number(i) + 1}.`)
        .replace('.mlp.dwconv.', '.mlp.dwconv.dwconv.');
      official[o] = v;
    }
    const m = pvtV2(fx.case.config);
    const res = loadTimmWeights(m, official);
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
    const sd = m.stateDict();
    for (const k of Object.keys(ref)) expect(compare(sd[k], ref[k], 0, 0).maxAbsErr, k).toBe(0);
    tf.dispose([...Object.values(sd), ...Object.values(ref)]);
    m.dispose();
    fx.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const base: PvtV2Config = { depths: [1, 1, 1, 1], embedDims: [8, 16, 32, 64], numHeads: [1, 2, 4, 8], numClasses: 10 };
    expectError(() => pvtV2({ ...base, numHeads: [1, 3, 4, 8] }), /numHeads\[1\] = 3 does not divide embedDims\[1\] = 16/);
    expectError(() => pvtV2({ ...base, embedDims: [8, 16, 32] }), /embedDims has 3 entries but depths has 4 stages/);
    expectError(
      () => pvtV2({ ...base, imgSize: 80 }),
      /srRatios\[0\] = 8 does not divide the stage-0 token grid 20x20 of a 80x80 input: the input size must be a multiple of 32/,
    );
    expectError(() => pvtV2({ ...base, srRatios: [8, 4, 0, 1] }), /srRatios\[2\] must be a positive integer, got 0/);
    expectError(() => pvtV2({ ...base, globalPool: 'max' as 'avg' }), /globalPool 'max' is not supported/);
    const m = pvtV2(base);
    const bad = tf.zeros([1, 80, 80, 3]);
    expectError(() => m.forward(bad), /srRatios\[0\] = 8 does not divide the stage-0 token grid 20x20/);
    const badC = tf.zeros([1, 64, 64, 1]);
    expectError(() => m.forward(badC), /expected 3 input channels/);
    tf.dispose([bad, badC]);
    m.dispose();
    // the linear variant ignores srRatios: any size runs
    const li = pvtV2({ ...base, linear: true });
    const x96 = tf.zeros([1, 80, 80, 3]);
    const y = li.forward(x96) as tf.Tensor;
    expect(y.shape).toEqual([1, 10]);
    tf.dispose([x96, y]);
    li.dispose();
  });
});
