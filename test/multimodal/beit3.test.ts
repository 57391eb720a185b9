import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  beit3,
  BEiT3,
  BEIT3_VARIANTS,
  beit3MaskedDataModeling,
  createBeit3,
  maskedDataModelingLoss,
  maskedTokenCrossEntropy,
  resolveBeit3Config,
} from '../../src/models/beit3/index.js';
import { stepAndCheckGradients, step } from '../helpers/training.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const CASE = 'beit3_tiny_p8_32';

const bytes = (t: tf.Tensor) => {
  const a = t.dataSync() as Float32Array;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
};

/** The four stored runs of the case: which inputs each one feeds. */
function runs(fx: Fixture, model: BEiT3): { name: string; out: ReturnType<BEiT3['forward']> }[] {
  const image = nchwToNhwc(fx.io.image);
  const textIds = fx.io.text_ids;
  const textPaddingMask = fx.io.text_padding_mask;
  const visionMaskedPosition = fx.io.vision_masked_position;
  const res = [
    { name: 'encoder_out_vision', out: model.forward({ image }) },
    { name: 'encoder_out_vision_masked', out: model.forward({ image, visionMaskedPosition }) },
    { name: 'encoder_out_text', out: model.forward({ textIds, textPaddingMask }) },
    { name: 'encoder_out_joint', out: model.forward({ image, textIds, textPaddingMask }) },
  ];
  image.dispose();
  return res;
}

for (const backend of BACKENDS) {
  describe(`beit3 fixture ${CASE} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('every stored encoder output (vision, masked vision, text with padding, joint) matches torchscale', () => {
      const model = beit3(fx.case.config);
      const res = loadTimmWeights(model, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual([]);
      const before = tf.memory().numTensors;
      const outs = runs(fx, model);
      const errs: Record<string, number> = {};
      for (const { name, out } of outs) {
        expect(out.multiwaySplitPosition, name).toBe(fx.case.multiway_split_position[name]);
        const r = compare(out.encoderOut, fx.io[name], fx.case.atol, fx.case.rtol);
        errs[name] = r.maxAbsErr;
        expect(r.worstExcess, `${name} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        expect(out.encoderPaddingMask.shape).toEqual(out.encoderOut.shape.slice(0, 2));
        tf.dispose([out.encoderOut, out.encoderPaddingMask]);
      }
      expect(Object.keys(fx.case.outputs).filter((k) => !(k in errs))).toEqual([]);
      expect(tf.memory().numTensors).toBe(before);
      console.log(`${CASE} [${backend}] max abs err ${JSON.stringify(errs)}`);
      model.dispose();
    });

    it('writeSafetensors(stateDict()) reproduces every tensor of the reference file byte for byte', () => {
      const model = beit3(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      const sd = model.stateDict();
      const back = readSafetensors(writeSafetensors(sd));
      const ref = readSafetensors(fx.weightsBytes!);
      expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
      for (const k of Object.keys(ref)) {
        expect(back[k].shape, k).toEqual(ref[k].shape);
        expect(Buffer.compare(bytes(back[k]), bytes(ref[k])), k).toBe(0);
      }
      tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
      model.dispose();
    });

    it('loads a unilm-style checkpoint (keys under beit3., plus task heads) with prefix "beit3."', () => {
      const ref = readSafetensors(fx.weightsBytes!);
      const wrapped: Record<string, tf.Tensor> = { 'head.weight': tf.zeros([3, 32]) };
      for (const [k, v] of Object.entries(ref)) wrapped[`beit3.${k}`] = v;
      const model = beit3(fx.case.config);
      const res = loadTimmWeights(model, wrapped, { prefix: 'beit3.' });
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual(['head.weight']);
      const image = nchwToNhwc(fx.io.image);
      const out = model.forward({ image });
      expect(compare(out.encoderOut, fx.io.encoder_out_vision, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([image, out.encoderOut, out.encoderPaddingMask, ...Object.values(wrapped)]);
      model.dispose();
    });

    it('masked data modeling: one training step gives every parameter a gradient, the loss falls, nothing leaks', () => {
      const m = beit3MaskedDataModeling(fx.case.config, { visualVocabSize: 16 });
      const sd = prefixed(fx);
      const res = loadTimmWeights(m, sd, { strict: false });
      tf.dispose(Object.values(sd));
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const image = nchwToNhwc(fx.io.image);
      const inputs = {
        image,
        textIds: fx.io.text_ids,
        textPaddingMask: fx.io.text_padding_mask,
        visionMaskedPosition: fx.io.vision_masked_position,
      };
      const imageTargets = tf.tensor2d(
        Array.from({ length: 32 }, (_, i) => (i * 7) % 16),
        [2, 16],
        'int32',
      );
      const textMask = tf.tensor2d([
        [0, 1, 0, 0, 1, 0, 0, 1, 0, 0],
        [1, 0, 0, 1, 0, 0, 1, 0, 0, 0],
      ]);
      const targets = { imageTargets, imageMask: fx.io.vision_masked_position, textTargets: fx.io.text_ids, textMask };
      const lossFn = () => maskedDataModelingLoss(m.forward(inputs, { training: true }), targets).loss;
      const opt = tf.train.sgd(0.05);
      const before = tf.memory().numTensors;
      const losses = [stepAndCheckGradients(m, lossFn, opt, { label: `beit3 mdm ${backend}`, expectUpdate: true })];
      expect(tf.memory().numTensors).toBe(before);
      for (let i = 0; i < 4; i++) losses.push(step(m, lossFn, opt));
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      // the parts: image CE over the masked patches, text CE over the masked text tokens
      const logits = m.forward(inputs);
      const parts = maskedDataModelingLoss(logits, targets);
      const sum = parts.imageLoss!.dataSync()[0] + parts.textLoss!.dataSync()[0];
      expect(parts.loss.dataSync()[0]).toBeCloseTo(sum, 5);
      tf.dispose([logits.imageLogits!, logits.textLogits!, parts.imageLoss!, parts.textLoss!, parts.loss, image, imageTargets, textMask]);
      opt.dispose();
      m.dispose();
    });
  });
}

function prefixed(fx: Fixture): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(readSafetensors(fx.weightsBytes!))) out[`beit3.${k}`] = v;
  return out;
}

describe('beit3 configuration semantics', () => {
  beforeAll(() => useBackend('cpu'));

  it('EncoderConfig post-processing: subln forces pre-LN, deepnorm forces post-LN and wins over subln', () => {
    expect(resolveBeit3Config({}).encoderNormalizeBefore).toBe(true);
    const dn = resolveBeit3Config({ deepnorm: true });
    expect([dn.encoderNormalizeBefore, dn.subln, dn.deepnorm]).toEqual([false, false, true]);
    const both = resolveBeit3Config({ deepnorm: true, subln: true });
    expect([both.encoderNormalizeBefore, both.subln, both.deepnorm]).toEqual([false, false, true]);
    const post = resolveBeit3Config({ subln: false, encoderNormalizeBefore: false });
    expect([post.encoderNormalizeBefore, post.subln]).toEqual([false, false]);
  });

  it('the key set follows the switches (sub-LN norms, final norm, layernorm_embedding, output layer, multiway)', () => {
    const tiny = {
      imgSize: 16,
      patchSize: 8,
      vocabSize: 20,
      encoderEmbedDim: 8,
      encoderAttentionHeads: 2,
      encoderFfnEmbedDim: 16,
      encoderLayers: 2,
      maxSourcePositions: 12,
    };
    const keys = (c: object) => {
      const m = beit3({ ...tiny, ...c });
      const k = m.namedParameters().map(([n]) => n);
      m.dispose();
      return k;
    };
    const base = keys({});
    expect(base).toContain('encoder.layers.1.self_attn.inner_attn_ln.B.weight');
    expect(base).toContain('encoder.layers.0.ffn.A.ffn_layernorm.weight');
    expect(base).toContain('encoder.layer_norm.A.weight');
    expect(base.some((k) => k.includes('output_projection'))).toBe(false);
    const deep = keys({ deepnorm: true });
    expect(deep.some((k) => k.includes('inner_attn_ln') || k.includes('ffn_layernorm') || k.startsWith('encoder.layer_norm'))).toBe(false);
    expect(keys({ layernormEmbedding: true, noOutputLayer: false })).toEqual(
      expect.arrayContaining(['encoder.layernorm_embedding.B.bias', 'encoder.output_projection.weight']),
    );
    expectError(() => keys({ multiway: false }), /Multiway Transformer/);
  });

  it('post-LN / deepnorm layers compute ln(alpha x + branch(x)) with alpha = (2 N)^(1/4)', () => {
    const cfg = {
      imgSize: 16,
      patchSize: 8,
      vocabSize: 20,
      encoderEmbedDim: 8,
      encoderAttentionHeads: 2,
      encoderFfnEmbedDim: 16,
      encoderLayers: 3,
      maxSourcePositions: 12,
      deepnorm: true,
    };
    const m = beit3(cfg);
    const layer = m.encoder.layers.items[0];
    expect(layer.alpha).toBeCloseTo(Math.pow(6, 0.25), 12);
    const x = tf.randomNormal([2, 5, 8], 0, 1, 'float32', 3);
    const inputs = { split: 0, keyBias: null, attnMask: null, training: false };
    const got = layer.forward(x, inputs);
    const ln = (e: any, u: tf.Tensor) => e.B.forward(u);
    const y = ln(layer.selfAttnLayerNorm, tf.add(tf.mul(x, layer.alpha), layer.selfAttn.forward(x, inputs)));
    const want = ln(layer.finalLayerNorm, tf.add(tf.mul(y, layer.alpha), (layer.ffn as any).B.forward(y)));
    expect(compare(got, want, 1e-6, 0).worstExcess).toBeLessThanOrEqual(0);
    tf.dispose([x, got, y, want]);
    m.dispose();
  });

  it('an all-zero attnMask changes nothing; a mask hiding the text from the image tokens leaves the image tokens as without text', () => {
    const m = beit3({
      imgSize: 16,
      patchSize: 8,
      vocabSize: 20,
      encoderEmbedDim: 8,
      encoderAttentionHeads: 2,
      encoderFfnEmbedDim: 16,
      encoderLayers: 2,
      maxSourcePositions: 12,
    });
    const image = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 4);
    const textIds = tf.tensor2d([[3, 7, 9]], [1, 3], 'int32');
    const t = 5 + 3;
    const plain = m.forward({ image, textIds });
    const zero = m.forward({ image, textIds, attnMask: tf.zeros([t, t]) });
    expect(compare(zero.encoderOut, plain.encoderOut, 0, 0).maxAbsErr).toBe(0);
    const blockText = tf.tidy(() => {
      const v = new Float32Array(t * t);
      for (let i = 0; i < 5; i++) for (let j = 5; j < t; j++) v[i * t + j] = -Infinity;
      return tf.tensor2d(v, [t, t]);
    });
    const masked = m.forward({ image, textIds, attnMask: blockText });
    const alone = m.forward({ image });
    const head = tf.slice(masked.encoderOut, [0, 0, 0], [1, 5, 8]);
    expect(compare(head, alone.encoderOut, 1e-5, 1e-5).worstExcess).toBeLessThanOrEqual(0);
    tf.dispose([
      image,
      textIds,
      blockText,
      head,
      plain.encoderOut,
      plain.encoderPaddingMask,
      zero.encoderOut,
      zero.encoderPaddingMask,
      masked.encoderOut,
      masked.encoderPaddingMask,
      alone.encoderOut,
      alone.encoderPaddingMask,
    ]);
    m.dispose();
  });

  it('the unilm variants and createBeit3', () => {
    expect(Object.keys(BEIT3_VARIANTS)).toEqual(['beit3_base_patch16_224', 'beit3_large_patch16_224']);
    const c = resolveBeit3Config(BEIT3_VARIANTS.beit3_large_patch16_224);
    expect([c.encoderEmbedDim, c.encoderLayers, c.encoderAttentionHeads, c.encoderFfnEmbedDim, c.vocabSize, c.maxSourcePositions]).toEqual([
      1024, 24, 16, 4096, 64010, 1024,
    ]);
    const m = createBeit3('beit3_base_patch16_224', { encoderLayers: 1, vocabSize: 100 });
    expect(m.stateDict !== undefined && m.numPatches).toBe(196);
    expect(m.encoder.layers.length).toBe(1);
    m.dispose();
    expectError(() => createBeit3('beit3_huge'), /unknown BEiT-3 variant/);
  });

  it('bad inputs raise clear errors', () => {
    const m = beit3({
      imgSize: 16,
      patchSize: 8,
      vocabSize: 20,
      encoderEmbedDim: 8,
      encoderAttentionHeads: 2,
      encoderFfnEmbedDim: 16,
      encoderLayers: 1,
      maxSourcePositions: 6,
    });
    const img = tf.zeros([1, 16, 16, 3]);
    expectError(() => m.forward({}), /needs an image, textIds, or both/);
    expectError(() => m.forward({ image: tf.zeros([1, 24, 24, 3]) }), /does not match the model's imgSize 16/);
    expectError(() => m.forward({ textIds: tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], 'int32') }), /more than maxSourcePositions 6/);
    expectError(() => m.forward({ textIds: tf.tensor2d([[1, 25]], [1, 2], 'int32') }), /outside \[0, 20\)/);
    expectError(() => m.forward({ image: img, visionMaskedPosition: tf.zeros([1, 3]) }), /visionMaskedPosition must be \[B, numPatches\]/);
    expectError(() => beit3({ encoderEmbedDim: 10, encoderAttentionHeads: 3 }), /does not divide/);
    expectError(() => maskedTokenCrossEntropy(tf.zeros([1, 2, 3]), tf.tensor2d([[0, 5]]), tf.tensor2d([[0, 1]])), /outside \[0, 3\)/);
    img.dispose();
    m.dispose();
  });
});
