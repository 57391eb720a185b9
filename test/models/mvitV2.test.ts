import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import '../../src/models/mvitV2/index.js';
import { resolveMultiScaleVitCfg } from '../../src/models/mvitV2/config.js';
import { mvitV2, MultiScaleVitConfig } from '../../src/models/mvitV2/multiScaleVit.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { checkBackboneTrainingStep } from '../helpers/training.js';

const CASE = 'mvitv2_64';

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

describeFixtureParity(CASE, mvitV2, { label: 'MViTv2', headKeys: ['head.fc.bias', 'head.fc.weight'] });

for (const backend of BACKENDS) {
  describe(`MViTv2 on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('one training step reaches every trainable variable and leaks nothing (with and without class token)', () => {
      const base = fx.case.config as MultiScaleVitConfig;
      // with a class token, 'avg' pooling: under 'token' pooling the last block's spatial queries (its
      // pool_q and rel_pos tables) cannot influence the output, so their gradient is zero in PyTorch too
      const withCls: MultiScaleVitConfig = { ...base, globalPool: 'avg', cfg: { ...base.cfg, useClsToken: true, useAbsPos: true } };
      for (const cfg of [base, withCls]) {
        const model = mvitV2(cfg);
        if (!cfg.cfg?.useClsToken) loadTimmWeights(model, fx.weightsBytes!);
        const x = nchwToNhwc(fx.io.input);
        checkBackboneTrainingStep(model, x, `mvitV2 cls=${cfg.cfg?.useClsToken ?? false} on ${backend}`);
        x.dispose();
        model.dispose();
      }
    });
  });
}

describe('MViTv2 configs and variants', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it("resolves the nested cfg exactly as timm's MultiScaleVitCfg.__post_init__ (case.json resolved_cfg)", () => {
    const fx = loadFixture(CASE);
    const got = resolveMultiScaleVitCfg(fx.case.config.cfg) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(fx.case.resolved_cfg as Record<string, unknown>)) expect(got[camel(k)], k).toEqual(v);
    fx.dispose();
  });

  it("registers timm's variants; mvitv2_large moves the width change into the MLP (expand_attn=False)", () => {
    expect(listModels('mvitv2_*')).toEqual([
      'mvitv2_base',
      'mvitv2_base_cls',
      'mvitv2_huge_cls',
      'mvitv2_large',
      'mvitv2_large_cls',
      'mvitv2_small',
      'mvitv2_small_cls',
      'mvitv2_tiny',
    ]);
    expect(getModelEntry('mvitv2_tiny').config).toEqual({ cfg: { depths: [1, 2, 5, 2] } });
    const tiny = createModel('mvitv2_tiny');
    expect(tiny.featureInfo.map((f) => [f.numChs, f.reduction])).toEqual([
      [96, 4],
      [192, 8],
      [384, 16],
      [768, 32],
    ]);
    const shapes = Object.fromEntries(tiny.namedParameters().map(([k, p]) => [k, p.torchShape]));
    expect(shapes['stages.1.blocks.0.shortcut_proj_attn.weight']).toEqual([192, 96]);
    expect(shapes['stages.0.blocks.0.attn.pool_k.weight']).toEqual([96, 1, 3, 3]);
    // 56x56 queries against 14x14 keys (kv stride 4): 2 * 56 - 1 rows
    expect(shapes['stages.0.blocks.0.attn.rel_pos_h']).toEqual([111, 96]);
    expect(shapes['stages.2.blocks.0.attn.rel_pos_h']).toEqual([55, 96]);
    tiny.dispose();
    const large = mvitV2({ cfg: { depths: [1, 1, 2, 1], embedDim: 8, numHeads: 2, expandAttn: false }, imgSize: 64, numClasses: 10 });
    const ls = Object.fromEntries(large.namedParameters().map(([k, p]) => [k, p.torchShape]));
    expect(ls['stages.0.blocks.0.shortcut_proj_mlp.weight']).toEqual([16, 8]);
    expect(ls['stages.2.blocks.1.shortcut_proj_mlp.weight']).toEqual([64, 32]);
    expect(Object.keys(ls).some((k) => k.includes('shortcut_proj_attn'))).toBe(false);
    const x = tf.randomNormal([1, 64, 64, 3]);
    const y = large.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 10]);
    tf.dispose([x, y]);
    large.dispose();
  });

  it('loads an official (facebookresearch/mvit) checkpoint layout through the checkpoint filter', () => {
    const fx = loadFixture(CASE);
    const ref = readSafetensors(fx.weightsBytes!);
    const depths = fx.case.config.cfg.depths as number[];
    const offset = depths.map((_, i) => depths.slice(0, i).reduce((a, b) => a + b, 0));
    const official: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(ref)) {
      const o = k
        .replace(/^stages\.(\d+)\.blocks\.(\d+)\./, (_, s, j) => `blocks.${offset[Number(s)] + Number(j)}.`)
        .replace('.shortcut_proj_attn.', '.proj.')
        .replace(/^head\.fc\./, 'head.projection.');
      official[o] = v;
    }
    expect(Object.keys(official)).toContain('blocks.1.proj.weight');
    const m = mvitV2(fx.case.config);
    const res = loadTimmWeights(m, official);
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
    const sd = m.stateDict();
    for (const k of Object.keys(ref)) expect(compare(sd[k], ref[k], 0, 0).maxAbsErr, k).toBe(0);
    tf.dispose([...Object.values(sd), ...Object.values(ref)]);
    m.dispose();
    fx.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const cfg = { depths: [1, 1, 2, 1], embedDim: 8, numHeads: 1 };
    expectError(
      () => mvitV2({ cfg: { ...cfg, numHeads: 3 }, imgSize: 64 }),
      /numHeads\[0\] = 3 does not divide the stage-0 attention width 8/,
    );
    expectError(
      () => mvitV2({ cfg: { ...cfg, numHeads: [1, 2, 4, 6] }, imgSize: 64 }),
      /numHeads\[3\] = 6 does not divide the stage-3 attention width 64/,
    );
    expectError(
      () => mvitV2({ cfg: { ...cfg, embedDim: [8, 16, 32] }, imgSize: 64 }),
      /cfg.embedDim has 3 entries but cfg.depths has 4 stages/,
    );
    expectError(() => mvitV2({ cfg, imgSize: 66 }), /image size 66x66 is not divisible by cfg.patchStride 4/);
    expectError(() => mvitV2({ cfg, imgSize: 48 }), /cfg.strideQ\[3\] = \[2, 2\] does not divide the stage-3 token grid 3x3/);
    expectError(() => mvitV2({ cfg, imgSize: 72 }), /cfg.strideKv\[0\] = \[4, 4\] does not divide the stage-0 token grid 18x18/);
    expectError(() => mvitV2({ cfg, imgSize: [64, 128] }), /spatial relative positions need a square token grid, got 16x32/);
    expectError(() => mvitV2({ cfg: { ...cfg, poolFirst: true }, imgSize: 64 }), /poolFirst/);
    expectError(
      () =>
        mvitV2({
          cfg: {
            ...cfg,
            strideQ: [
              [1, 1],
              [2, 2],
            ],
          },
          imgSize: 64,
        }),
      /cfg.strideQ needs one \[sh, sw\] per stage \(4\)/,
    );
    expectError(() => mvitV2({ cfg, imgSize: 64, globalPool: 'token' }), /globalPool 'token' needs cfg.useClsToken = true/);
    const m = mvitV2({ cfg, imgSize: 64, numClasses: 10 });
    const x = tf.zeros([1, 32, 32, 3]);
    expectError(() => m.forward(x), /expected 64x64 input \(imgSize; MViTv2 has a fixed input size\), got 32x32/);
    x.dispose();
    m.dispose();
  });
});
