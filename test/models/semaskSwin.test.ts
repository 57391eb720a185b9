import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileMatcher } from '../../src/models/groupMatcher.js';
import { createModel, getFamily, getModelEntry, listModels } from '../../src/models/registry.js';
import {
  defaultSemGlobalStages,
  resolveSemaskSwinConfig,
  semaskSwin,
  SemaskOutput,
  SemaskSwinConfig,
} from '../../src/models/semaskSwin/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { stepAndCheckGradients, trainSteps } from '../helpers/training.js';

const CASE = 'semask_swin_w4_88';

/** Every output of the case within its tolerances; returns the max abs errors. */
function checkOutputs(fx: Fixture, out: SemaskOutput, label: string): Record<string, number> {
  const errs: Record<string, number> = {};
  const levels = Object.keys(fx.case.outputs).filter((k) => k.startsWith('features.')).length;
  expect(out.features.length).toBe(levels);
  expect(out.semanticMaps.length).toBe(levels);
  for (let i = 0; i < levels; i++) {
    for (const [name, actual] of [
      [`features.${i}`, out.features[i]],
      [`semantic_maps.${i}`, out.semanticMaps[i]],
    ] as const) {
      const exp = nchwToNhwc(fx.io[name]);
      const r = compare(actual, exp, fx.case.atol, fx.case.rtol);
      exp.dispose();
      errs[name] = r.maxAbsErr;
      expect(r.worstExcess, `${label} ${name}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
    }
  }
  return errs;
}

for (const backend of BACKENDS) {
  describe(`SeMask Swin fixture ${CASE} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('features and semantic maps of every stage match the reference; featuresOnly gives the same features', () => {
      const model = semaskSwin(fx.case.config as SemaskSwinConfig);
      const res = loadTimmWeights(model, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual([]);
      const fo = semaskSwin({ ...(fx.case.config as SemaskSwinConfig), featuresOnly: true });
      loadTimmWeights(fo, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const out = model.forward(x) as SemaskOutput;
      const errs = checkOutputs(fx, out, backend);
      tf.dispose(out);
      const maps = fo.forward(x) as tf.Tensor4D[];
      maps.forEach((m, i) => {
        const exp = nchwToNhwc(fx.io[`features.${i}`]);
        expect(compare(m, exp, fx.case.atol, fx.case.rtol).worstExcess, `featuresOnly.${i}`).toBeLessThanOrEqual(0);
        exp.dispose();
      });
      tf.dispose(maps);
      expect(tf.memory().numTensors).toBe(before);
      console.log(`${CASE} [${backend}] max abs err ${JSON.stringify(errs)}`);
      x.dispose();
      model.dispose();
      fo.dispose();
    });
  });
}

/** The raw bytes of every tensor of a safetensors file, with its dtype. */
function rawTensors(bytes: Uint8Array): Record<string, { dtype: string; shape: number[]; bytes: Buffer }> {
  const h = readSafetensorsHeader(bytes);
  const out: Record<string, { dtype: string; shape: number[]; bytes: Buffer }> = {};
  for (const [k, e] of Object.entries(h.tensors)) {
    out[k] = {
      dtype: e.dtype,
      shape: e.shape,
      bytes: Buffer.from(bytes.subarray(h.dataStart + e.dataOffsets[0], h.dataStart + e.dataOffsets[1])),
    };
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`SeMask Swin on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('writeSafetensors(stateDict()) reproduces every tensor of the reference file byte for byte, relative_position_index as I64', () => {
      const model = semaskSwin(fx.case.config as SemaskSwinConfig);
      loadTimmWeights(model, fx.weightsBytes!);
      const sd = model.stateDict();
      const ours = rawTensors(writeSafetensors(sd));
      const ref = rawTensors(fx.weightsBytes!);
      expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
      const int64 = Object.keys(ref).filter((k) => ref[k].dtype === 'I64');
      expect(int64.length).toBe(8);
      for (const k of Object.keys(ref)) {
        expect(ours[k].dtype, k).toBe(ref[k].dtype);
        expect(ours[k].shape, k).toEqual(ref[k].shape);
        expect(Buffer.compare(ours[k].bytes, ref[k].bytes), k).toBe(0);
      }
      tf.dispose(Object.values(sd));
      model.dispose();
    });

    it('one training step reaches every trainable variable, the losses fall, nothing leaks', async () => {
      // training mode (the semantic attention's dropout active); no drop path, which may switch a branch off
      const cfg = fx.case.config as SemaskSwinConfig;
      const model = semaskSwin(cfg);
      loadTimmWeights(model, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input).slice([0, 0, 0, 0], [2, 40, 44, 3]);
      const k = cfg.numCls!;
      // a per-stage semantic target and a feature target
      const wts = model.featureInfo.map((f, i) => tf.randomNormal([1, 1, 1, f.numChs], 0, 1, 'float32', 20 + i));
      const lossFn = () =>
        tf.tidy(() => {
          const out = model.forward(x, { training: true }) as SemaskOutput;
          let loss: tf.Tensor = tf.scalar(0);
          out.features.forEach((f, i) => (loss = tf.add(loss, tf.mean(tf.mul(f, wts[i])))));
          out.semanticMaps.forEach((s) => {
            const [b, h, w] = s.shape;
            const lab = tf.oneHot(tf.fill([b * h * w], 1, 'int32'), k);
            loss = tf.add(loss, tf.losses.softmaxCrossEntropy(lab, s.reshape([b * h * w, k])));
          });
          return loss as tf.Scalar;
        });
      const opt = tf.train.sgd(0.05);
      const before = tf.memory().numTensors;
      stepAndCheckGradients(model, lossFn, opt, { label: `semask on ${backend}`, expectUpdate: true });
      expect(tf.memory().numTensors).toBe(before);
      const { losses } = await trainSteps(model, lossFn, opt, 4);
      expect(losses[3]).toBeLessThan(losses[0]);
      tf.dispose([x, ...wts]);
      opt.dispose();
      model.dispose();
    });

    it('global semantic layers change only their stages; other input sizes pad every stage', () => {
      const cfg = fx.case.config as SemaskSwinConfig;
      const a = semaskSwin(cfg);
      const b = semaskSwin({ ...cfg, semGlobalStages: [] });
      loadTimmWeights(a, fx.weightsBytes!);
      loadTimmWeights(b, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      const oa = a.forward(x) as SemaskOutput;
      const ob = b.forward(x) as SemaskOutput;
      for (const i of [0, 1]) {
        expect(compare(oa.features[i], ob.features[i], 0, 0).maxAbsErr).toBe(0);
        expect(compare(oa.semanticMaps[i], ob.semanticMaps[i], 0, 0).maxAbsErr).toBe(0);
      }
      // stage 2's map is mlp_cls_q of its (unchanged) input; its tokens and everything after differ
      expect(compare(oa.features[2], ob.features[2], 0, 0).maxAbsErr).toBeGreaterThan(1e-3);
      expect(compare(oa.features[3], ob.features[3], 0, 0).maxAbsErr).toBeGreaterThan(1e-3);
      expect(compare(oa.semanticMaps[3], ob.semanticMaps[3], 0, 0).maxAbsErr).toBeGreaterThan(1e-3);
      const odd = tf.randomNormal([1, 37, 50, 3], 0, 1, 'float32', 8);
      const before = tf.memory().numTensors;
      const oo = a.forward(odd) as SemaskOutput;
      expect(oo.features.map((t) => t.shape)).toEqual([
        [1, 10, 13, 8],
        [1, 5, 7, 16],
        [1, 3, 4, 32],
        [1, 2, 2, 64],
      ]);
      expect(oo.semanticMaps.map((t) => t.shape)).toEqual([
        [1, 10, 13, 5],
        [1, 5, 7, 5],
        [1, 3, 4, 5],
        [1, 2, 2, 5],
      ]);
      tf.dispose(oo);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, odd, oa, ob]);
      a.dispose();
      b.dispose();
    });
  });
}

describe('SeMask Swin configs, variants, checkpoints', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('registers the SeMask-FPN variants; the official rule picks the global semantic layers', () => {
    const names = listModels('semask_swin_*');
    expect(names.length).toBe(12);
    const tiny = getModelEntry('semask_swin_tiny_patch4_window7_ade20k');
    expect(tiny.config).toMatchObject({ embedDim: 96, depths: [2, 2, 6, 2], windowSize: 7, semWindowSize: 7, numCls: 150 });
    expect(tiny.pretrainedCfg.inputSize).toEqual([3, 512, 512]);
    expect(getModelEntry('semask_swin_large_patch4_window12_coco_stuff10k').pretrainedCfg).toMatchObject({
      inputSize: [3, 640, 640],
      numClasses: 171,
    });
    const rule: Record<string, number[]> = {
      semask_swin_tiny_patch4_window7_ade20k: [2, 3],
      semask_swin_base_patch4_window12_ade20k: [],
      semask_swin_large_patch4_window12_ade20k: [2, 3],
      semask_swin_small_patch4_window7_cityscapes: [],
      semask_swin_large_patch4_window12_cityscapes: [],
      semask_swin_small_patch4_window7_coco_stuff10k: [2, 3],
    };
    for (const [name, stages] of Object.entries(rule))
      expect(resolveSemaskSwinConfig(getModelEntry(name).config).semGlobalStages, name).toEqual(stages);
    // the rule itself: embedDim 96 or 192 and more than 19 classes
    expect(defaultSemGlobalStages(96, 20, 4)).toEqual([2, 3]);
    expect(defaultSemGlobalStages(96, 19, 4)).toEqual([]);
    expect(defaultSemGlobalStages(128, 150, 4)).toEqual([]);
    const small = createModel('semask_swin_tiny_patch4_window7_cityscapes', { embedDim: 8, numHeads: [1, 1, 2, 2], depths: [1, 1, 1, 1] });
    expect(small.featureInfo.map((f) => [f.numChs, f.reduction, f.module])).toEqual([
      [8, 4, 'layers.0'],
      [16, 8, 'layers.1'],
      [32, 16, 'layers.2'],
      [64, 32, 'layers.3'],
    ]);
    small.dispose();
    const m = semaskSwin({ embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, semWindowSize: 2, numCls: 3 });
    const again = getFamily('semask_swin').create(m.config);
    expect(again.config).toEqual(m.config);
    expect(again.numParams()).toBe(m.numParams());
    again.dispose();
    m.dispose();
  });

  it('loads a SeMask-FPN segmentor checkpoint through prefix "backbone."', () => {
    const fx = loadFixture(CASE);
    const ref = readSafetensors(fx.weightsBytes!);
    const seg: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(ref)) seg[`backbone.${k}`] = v;
    seg['decode_head.conv_seg.weight'] = tf.zeros([5, 8, 1, 1]);
    seg['decode_head.conv_seg.bias'] = tf.zeros([5]);
    const m = semaskSwin(fx.case.config as SemaskSwinConfig);
    const res = loadTimmWeights(m, seg, { prefix: 'backbone.' });
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
    expect(res.skipped.sort()).toEqual(['decode_head.conv_seg.bias', 'decode_head.conv_seg.weight']);
    const sd = m.stateDict();
    for (const k of Object.keys(ref)) expect(compare(sd[k], ref[k], 0, 0).maxAbsErr, k).toBe(0);
    tf.dispose([...Object.values(sd), ...Object.values(ref), seg['decode_head.conv_seg.weight'], seg['decode_head.conv_seg.bias']]);
    m.dispose();
    fx.dispose();
  });

  it('groupMatcher, noWeightDecay, derivedBuffers, no classifier', () => {
    const m = semaskSwin({ embedDim: 8, depths: [2, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, semWindowSize: 2, numCls: 3 });
    const fine = compileMatcher(m.groupMatcher());
    expect(fine('patch_embed.proj.weight')).toEqual([0]);
    expect(fine('layers.0.blocks.1.attn.qkv.weight')).toEqual([1, 0, 1]);
    expect(fine('layers.0.semantic_layer.class_injection.0.gamma')).toEqual([1, 0, 99998]);
    expect(fine('layers.0.downsample.reduction.weight')).toEqual([1, 0, 99999]);
    expect(fine('norm0.weight')).toEqual([1, 0, 99999]);
    const coarse = compileMatcher(m.groupMatcher(true));
    expect(coarse('layers.2.semantic_layer.norm1.bias')).toEqual([1, 2]);
    expect(coarse('norm2.bias')).toEqual([1, 2]);
    expect(m.noWeightDecay()).toContain('*relative_position_bias_table');
    expect(m.derivedBuffers().some((re) => re.test('layers.0.blocks.1.attn_mask'))).toBe(true);
    expect(m.derivedBuffers().some((re) => re.test('layers.0.blocks.1.attn.relative_position_index'))).toBe(false);
    expect(m.numClasses).toBe(0);
    const x = tf.zeros([1, 16, 16, 3]);
    const ff = m.forwardFeatures(x);
    expect(ff.shape).toEqual([1, 1, 1, 64]);
    expectError(() => m.forwardHead(ff), /SeMask Swin has no classifier head/);
    expectError(() => m.resetClassifier(10), /resetClassifier\(10\) is not supported/);
    tf.dispose([x, ff]);
    m.dispose();
  });

  it('rejects bad configs and inputs with clear errors', () => {
    const base: SemaskSwinConfig = {
      embedDim: 8,
      depths: [1, 1, 1, 1],
      numHeads: [1, 1, 2, 2],
      windowSize: 2,
      semWindowSize: 2,
      numCls: 3,
    };
    expectError(() => semaskSwin({ ...base, numHeads: [1, 3, 2, 2] }), /numHeads\[1\] = 3 does not divide the stage width 16/);
    expectError(() => semaskSwin({ ...base, numHeads: [1, 1, 2] }), /numHeads has 3 entries but depths has 4 stages/);
    expectError(() => semaskSwin({ ...base, semGlobalStages: [4] }), /semGlobalStages lists stage 4, expected stages 0..3/);
    expectError(() => semaskSwin({ ...base, numCls: 0 }), /numCls must be a positive integer, got 0/);
    expectError(() => semaskSwin({ ...base, windowSize: 0 }), /windowSize must be a positive integer/);
    // ape: a (1, C, H, W) table for pretrainImgSize, resized bicubically to any input grid
    const ape = semaskSwin({ ...base, ape: true, pretrainImgSize: 32 });
    const ak = ape.stateDict();
    expect(ak.absolute_pos_embed.shape).toEqual([1, 8, 8, 8]);
    const xa = tf.zeros([1, 40, 24, 3]);
    const oa = ape.forward(xa) as SemaskOutput;
    expect(oa.features[0].shape).toEqual([1, 10, 6, 8]);
    tf.dispose([xa, oa, ...Object.values(ak)]);
    ape.dispose();
    const noSem = semaskSwin({ ...base, numSemBlocks: [1, 0, 1, 1] });
    const x = tf.zeros([1, 32, 32, 3]);
    expectError(() => noSem.forward(x), /stage 1 has no semantic layer \(numSemBlocks\[1\] = 0\)/);
    const m = semaskSwin(base);
    const bad = tf.zeros([1, 32, 32, 1]);
    expectError(() => m.forward(bad), /expected 3 input channels/);
    const bad3 = tf.zeros([32, 32, 3]);
    expectError(() => m.forward(bad3), /expected an NHWC image batch/);
    tf.dispose([x, bad, bad3]);
    noSem.dispose();
    m.dispose();
  });
});
