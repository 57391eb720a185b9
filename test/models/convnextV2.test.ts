import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { manualSeed } from '../../src/layers/init.js';
import { convnextV2 } from '../../src/models/convnextV2/index.js';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { trainSteps } from '../helpers/training.js';

let fx: Fixture;
beforeAll(async () => {
  await useBackend('cpu');
  fx = loadFixture('convnextv2_64');
});
afterAll(() => fx.dispose());

describeFixtureParity('convnextv2_64', convnextV2, { label: 'ConvNeXt V2' });

/** The fixture's timm state dict renamed to the official ConvNeXt-V2 checkpoint names and shapes. */
function toOfficial(sd: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k0, v] of Object.entries(sd)) {
    let k = k0.replace(/^stem\./, 'downsample_layers.0.').replace(/^stages\.(\d+)\.downsample\./, 'downsample_layers.$1.');
    k = k
      .replace(/^stages\.(\d+)\.blocks\.(\d+)\./, 'stages.$1.$2.')
      .replace('.conv_dw.', '.dwconv.')
      .replace('.mlp.fc', '.pwconv');
    k = k.replace(/^head\.norm\./, 'norm.').replace(/^head\.fc\./, 'head.');
    if (k.includes('.mlp.grn.')) {
      k = k.replace('.mlp.grn.weight', '.grn.gamma').replace('.mlp.grn.bias', '.grn.beta');
      out[k] = v.reshape([1, 1, 1, v.size]);
    } else out[k] = v.clone();
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`ConvNeXt V2 official checkpoint names on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('loads the official ConvNeXt-V2 names (grn gamma/beta (1,1,1,C), dwconv, pwconv, downsample_layers, norm, head), also into a convMlp model', () => {
      const ref = convnextV2(fx.case.config);
      loadTimmWeights(ref, fx.weightsBytes!);
      const timmSd = readSafetensors(fx.weightsBytes!);
      const official = toOfficial(timmSd);
      expect(Object.keys(official)).toContain('stages.1.0.grn.gamma');
      expect(official['stages.1.0.grn.gamma'].shape).toEqual([1, 1, 1, 64]);
      const x = nchwToNhwc(fx.io.input);
      const want = ref.forward(x) as tf.Tensor;
      for (const convMlp of [false, true]) {
        const model = convnextV2({ ...fx.case.config, convMlp });
        const res = loadTimmWeights(model, official);
        expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
        const got = model.forward(x) as tf.Tensor;
        expect(compare(got, want, 0, 0).maxAbsErr, `convMlp ${convMlp}`).toBe(0);
        const sd = model.stateDict();
        expect(sd['stages.0.blocks.0.mlp.fc1.weight'].shape).toEqual(convMlp ? [32, 8, 1, 1] : [32, 8]);
        expect(sd['stages.0.blocks.0.mlp.grn.weight'].shape).toEqual([32]);
        tf.dispose([got, ...Object.values(sd)]);
        model.dispose();
      }
      tf.dispose([x, want, ...Object.values(timmSd), ...Object.values(official)]);
      ref.dispose();
    });
  });
}

describe('ConvNeXt V2 heads and variants', () => {
  it('featuresOnly returns the stage maps (no head); resetClassifier keeps the head norm', () => {
    const fo = convnextV2({ ...fx.case.config, featuresOnly: true });
    const res = loadTimmWeights(fo, fx.weightsBytes!);
    expect(res.skipped.sort()).toEqual(['head.fc.bias', 'head.fc.weight', 'head.norm.bias', 'head.norm.weight']);
    expect(fo.featureInfo.map((f) => [f.numChs, f.reduction, f.module])).toEqual([
      [8, 4, 'stages.0'],
      [16, 8, 'stages.1'],
      [32, 16, 'stages.2'],
      [64, 32, 'stages.3'],
    ]);
    const x = nchwToNhwc(fx.io.input);
    const maps = fo.forward(x) as tf.Tensor4D[];
    expect(maps.map((m) => m.shape)).toEqual([
      [2, 16, 16, 8],
      [2, 8, 8, 16],
      [2, 4, 4, 32],
      [2, 2, 2, 64],
    ]);
    tf.dispose(maps);
    fo.dispose();

    const m = convnextV2(fx.case.config);
    loadTimmWeights(m, fx.weightsBytes!);
    const pre = m.forwardHead(m.forwardFeatures(x), { preLogits: true });
    m.resetClassifier(0);
    const pooled = m.forward(x) as tf.Tensor;
    expect(compare(pooled, pre, 0, 0).maxAbsErr).toBe(0);
    m.resetClassifier(3);
    const y = m.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 3]);
    tf.dispose([x, pre, pooled, y]);
    m.dispose();
  });

  it("registers timm's ConvNeXt V2 variants with their configs and resolutions", () => {
    const names = listModels('convnextv2*');
    for (const n of ['atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge']) expect(names).toContain(`convnextv2_${n}`);
    expect(getModelEntry('convnextv2_atto').config).toMatchObject({
      depths: [2, 2, 6, 2],
      dims: [40, 80, 160, 320],
      useGrn: true,
      lsInitValue: null,
      convMlp: true,
    });
    expect(getModelEntry('convnextv2_tiny').config).toMatchObject({
      depths: [3, 3, 9, 3],
      dims: [96, 192, 384, 768],
      useGrn: true,
      lsInitValue: null,
    });
    expect(getModelEntry('convnextv2_tiny').config.convMlp).toBeUndefined();
    expect(getModelEntry('convnextv2_huge').config).toMatchObject({ depths: [3, 3, 27, 3], dims: [352, 704, 1408, 2816] });
    expect(getModelEntry('convnextv2_huge').pretrainedCfg.inputSize).toEqual([3, 384, 384]);
    expect(getModelEntry('convnextv2_atto').pretrainedCfg.inputSize).toEqual([3, 224, 224]);
    const m = createModel('convnextv2_atto');
    // conv-MLP variant: 1x1-conv weights, no layer scale, GRN in every block
    const sd = m.stateDict();
    expect(sd['stages.0.blocks.0.mlp.fc1.weight'].shape).toEqual([160, 40, 1, 1]);
    expect(Object.keys(sd).some((k) => k.endsWith('.gamma'))).toBe(false);
    expect(Object.keys(sd).filter((k) => k.endsWith('mlp.grn.weight')).length).toBe(12);
    tf.dispose(Object.values(sd));
    m.dispose();
  });
});

describe('ConvNeXt V2 clear errors', () => {
  it('an input too small for the stages, or with other channels', () => {
    const m = convnextV2({ depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], numClasses: 2 });
    const small = tf.zeros([1, 24, 40, 3]);
    expect(() => m.forward(small)).toThrow(VisBackbonesError);
    expect(() => m.forward(small)).toThrow(/input 24x40 is too small: the 4 stages .* need at least 32x32/);
    const gray = tf.zeros([1, 32, 32, 1]);
    expect(() => m.forward(gray)).toThrow(/expected 3 input channels/);
    tf.dispose([small, gray]);
    m.dispose();
  });
  it('unsupported or inconsistent configs', () => {
    expect(() => convnextV2({ depths: [1, 1], dims: [8, 16, 32] })).toThrow(/dims lists 3 widths for 2 stages/);
    expect(() => convnextV2({ depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], stemType: 'overlap' })).toThrow(
      /stemType 'overlap' is not supported/,
    );
    expect(() => convnextV2({ depths: [1, 1, 1, 1], dims: [8, 16, 32, 64], headHiddenSize: 128 })).toThrow(
      /headHiddenSize 128 is not supported/,
    );
  });
});

describe('ConvNeXt V2 training on wasm', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });
  it('an atto-sized model on 32 px images: gradients everywhere, the loss falls over 10 steps, no leak', async () => {
    manualSeed(9);
    const model = convnextV2({ depths: [2, 2, 6, 2], dims: [40, 80, 160, 320], convMlp: true, numClasses: 4 });
    const x = tf.tidy(() => tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5));
    const labels = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 4);
    const opt = tf.train.sgd(0.05);
    const lossFn = () => tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training: true }) as tf.Tensor) as tf.Scalar;
    const { losses, kernels } = await trainSteps(model, lossFn, opt, 10);
    // the depthwise 7x7 gradients run on the kernels registered for wasm
    for (const k of ['DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']) expect(kernels.has(k), k).toBe(true);
    console.log(`atto-sized ConvNeXt V2 wasm losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    expect(losses[9]).toBeLessThan(losses[0]);
    expect(losses.every((l) => Number.isFinite(l))).toBe(true);
    tf.dispose([x, labels]);
    opt.dispose();
    model.dispose();
  });
});
