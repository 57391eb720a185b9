import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDenseClip,
  DENSECLIP_VARIANTS,
  denseClip,
  denseClipVisionTransformer,
  loadOpenAiClipWeights,
  pixelTextScoreMap,
  resizePositionGrid,
} from '../../src/models/denseclip/index.js';
import { pixelTextLoss } from '../../src/heads/pixelTextLoss.js';
import { denseClipSegmentor } from '../../src/tasks/denseClipSegmentor.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { step } from '../helpers/training.js';

for (const backend of BACKENDS) {
  describe(`denseclip segmentor training on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('denseclip_r50style_64');
    });
    afterAll(() => fx.dispose());

    it('one step gives every parameter a gradient (but attnpool.k_proj.bias, which cannot act), the loss falls, nothing leaks', () => {
      const cfg = { ...fx.case.config, contextDecoder: { ...fx.case.config.contextDecoder, dropout: 0 } };
      const m = denseClipSegmentor({ denseClip: denseClip(cfg), numClasses: 4, neckChannels: 8, dropoutRatio: 0 });
      const res = m.loadStateDict(readSafetensors(fx.weightsBytes!), { strict: false });
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.missing.every((k) => k.startsWith('neck.') || k.startsWith('decode_head.'))).toBe(true);
      const x = nchwToNhwc(fx.io.input);
      const ids = fx.io.texts.toInt();
      const labels = tf.tidy(() => tf.concat([tf.floor(tf.randomUniform([2, 60, 64], 0, 4, 'float32', 5)), tf.fill([2, 4, 64], 255)], 1));
      const lossFn = () => m.loss(x, ids, labels, { training: true }).loss;
      const opt = tf.train.sgd(0.02);
      const before = tf.memory().numTensors;
      const names = m
        .namedParameters()
        .filter(([, p]) => p.trainable)
        .map(([n]) => n);
      const vars = m.trainableVariables();
      const { value, grads } = tf.variableGrads(lossFn, vars);
      const dead: string[] = [];
      vars.forEach((v, i) => {
        const g = grads[v.name];
        const mx = g ? tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) : 0;
        if (names[i] === 'backbone.attnpool.k_proj.bias') expect(mx).toBeLessThan(1e-6);
        else if (!(mx > 0)) dead.push(names[i]);
      });
      expect(dead).toEqual([]);
      opt.applyGradients(grads);
      const losses = [value.dataSync()[0]];
      tf.dispose([value, ...Object.values(grads)]);
      expect(tf.memory().numTensors).toBe(before);
      for (let i = 0; i < 4; i++) losses.push(step(m, lossFn, opt));
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[4]).toBeLessThan(losses[0]);
      // inference: logits at stride 4 (or resized), the score map of the model
      const out = m.segment(x, ids, { outSize: [64, 64] });
      expect(out.logits.shape).toEqual([2, 64, 64, 4]);
      expect(out.scoreMap.shape).toEqual([2, 2, 2, 4]);
      tf.dispose([out.logits, out.scoreMap, x, ids, labels]);
      opt.dispose();
      m.dispose();
    });
  });
}

describe('denseclip weights, variants, losses and errors', () => {
  const fxs: Record<string, Fixture> = {};
  beforeAll(async () => {
    await useBackend('cpu');
    for (const c of ['clip_resnet_attn_64', 'denseclip_text_encoder_l12']) fxs[c] = loadFixture(c);
  });
  afterAll(() => Object.values(fxs).forEach((f) => f.dispose()));

  it('an OpenAI CLIP checkpoint loads as init_weights does: visual.* -> backbone (grid resized), text keys (positions truncated)', () => {
    const rn = fxs.clip_resnet_attn_64;
    const te = fxs.denseclip_text_encoder_l12;
    const clip: Record<string, tf.Tensor> = {
      input_resolution: tf.scalar(96, 'int32'),
      context_length: tf.scalar(16, 'int32'),
      vocab_size: tf.scalar(64, 'int32'),
      logit_scale: tf.scalar(4.6),
    };
    for (const [k, v] of Object.entries(readSafetensors(rn.weightsBytes!))) clip[`visual.${k}`] = v;
    for (const [k, v] of Object.entries(readSafetensors(te.weightsBytes!))) clip[k] = v;
    const pos = clip.positional_embedding;
    clip.positional_embedding = tf.concat([pos, tf.randomNormal([4, 16], 0, 1, 'float32', 1)], 0); // CLIP's longer table
    pos.dispose();
    // the backbone is built for 64 px (2x2 grid); CLIP's grid (3x3, input_resolution 96) is resized at load time
    const m = denseClip({
      backbone: { type: 'CLIPResNetWithAttention', ...rn.case.config, inputResolution: 64 },
      textEncoder: { type: 'CLIPTextContextEncoder', ...te.case.config },
      contextDecoder: { type: 'ContextDecoder', transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, visualDim: 24 },
      contextLength: 5,
      tokenEmbedDim: 16,
      textDim: 24,
    });
    const res = loadOpenAiClipWeights(m, clip);
    expect(res.loaded.length).toBe(rn.case.weights.num_tensors + te.case.weights.num_tensors);
    expect(res.skipped.sort()).toEqual(['context_length', 'input_resolution', 'logit_scale', 'vocab_size']);
    const x = nchwToNhwc(rn.io.input);
    const feat = m.extractFeat(x);
    expect(compare(feat.globalFeat, rn.io.global_feat, rn.case.atol, rn.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    const ve = tf.transpose(feat.visualEmbeddings, [0, 3, 1, 2]);
    expect(compare(ve, rn.io.visual_embeddings, rn.case.atol, rn.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    const emb = m.textEncoder.forward(te.io.text, te.io.context);
    expect(compare(emb, te.io.text_embeddings, te.case.atol, te.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    const grid = resizePositionGrid(clip['visual.attnpool.positional_embedding'], 2);
    expect(grid.shape).toEqual([5, 256]);
    tf.dispose([x, ve, emb, grid, feat.globalFeat, feat.visualEmbeddings, ...feat.features, ...Object.values(clip)]);
    m.dispose();
  });

  it('an mmseg DenseCLIP checkpoint (with neck.* / decode_head.*) loads non-strictly, skipping exactly the neck and head', () => {
    const fx = loadFixture('denseclip_r50style_64');
    const sd = readSafetensors(fx.weightsBytes!);
    sd['neck.lateral_convs.0.conv.weight'] = tf.zeros([4, 32, 1, 1]);
    sd['decode_head.conv_seg.weight'] = tf.zeros([4, 4, 1, 1]);
    const m = denseClip(fx.case.config);
    const res = loadTimmWeights(m, sd, { strict: false });
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
    expect(res.skipped.sort()).toEqual(['decode_head.conv_seg.weight', 'neck.lateral_convs.0.conv.weight']);
    tf.dispose(Object.values(sd));
    m.dispose();
    fx.dispose();
  });

  it('the official configs build (r50 / r101 / ViT-B/16) with their widths', () => {
    expect(Object.keys(DENSECLIP_VARIANTS)).toEqual(['denseclip_r50', 'denseclip_r101', 'denseclip_vit_b16']);
    const m = createDenseClip('denseclip_vit_b16', {
      backbone: {
        ...(DENSECLIP_VARIANTS.denseclip_vit_b16.backbone as object),
        layers: 1,
        outIndices: [0, 0, 0, 0],
        width: 64,
        heads: 2,
      } as never,
      textEncoder: { ...DENSECLIP_VARIANTS.denseclip_vit_b16.textEncoder, transformerLayers: 1, vocabSize: 100 },
    });
    const sd = m.stateDict();
    expect(sd.contexts.shape).toEqual([1, 8, 512]);
    expect(sd.gamma.shape).toEqual([512]);
    expect(sd['backbone.positional_embedding'].shape).toEqual([40 * 40 + 1, 64]);
    expect(sd['text_encoder.positional_embedding'].shape).toEqual([13, 512]);
    expect(sd['context_decoder.memory_proj.1.weight'].shape).toEqual([256, 512]);
    tf.dispose(Object.values(sd));
    m.dispose();
    expectError(() => createDenseClip('denseclip_r18'), /unknown DenseCLIP variant/);
  });

  it('patch-8 dense ViT: fpn strides 4, 8, 16, 32 (floor max-pool), and a ViT DenseCLIP appends the score map to level 2', () => {
    const vit = denseClipVisionTransformer({
      inputResolution: 32,
      patchSize: 8,
      width: 16,
      layers: 4,
      heads: 2,
      outputDim: 12,
      outIndices: [0, 1, 2, 3],
    });
    const x = tf.randomNormal([1, 48, 48, 3], 0, 1, 'float32', 2);
    const before = tf.memory().numTensors;
    const r = vit.forward(x);
    expect(r.features.map((f) => f.shape)).toEqual([
      [1, 12, 12, 16],
      [1, 6, 6, 16],
      [1, 3, 3, 16],
      [1, 1, 1, 16],
    ]);
    expect(r.globalEmbedding!.shape).toEqual([1, 12]);
    expect(r.visualEmbedding!.shape).toEqual([1, 6, 6, 12]);
    tf.dispose([...r.features, r.globalEmbedding!, r.visualEmbedding!]);
    expect(tf.memory().numTensors).toBe(before);
    vit.dispose();
    const m = denseClip({
      backbone: {
        type: 'CLIPVisionTransformer',
        inputResolution: 32,
        patchSize: 16,
        width: 16,
        layers: 4,
        heads: 2,
        outputDim: 12,
        outIndices: [0, 1, 2, 3],
      },
      textEncoder: { contextLength: 7, vocabSize: 20, transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, embedDim: 12 },
      contextDecoder: { transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, visualDim: 12 },
      contextLength: 4,
      scoreConcatIndex: 2,
      tokenEmbedDim: 8,
      textDim: 12,
    });
    const ids = tf.tensor2d(
      [
        [18, 3, 19, 0],
        [18, 5, 6, 19],
        [18, 19, 0, 0],
      ],
      [3, 4],
      'int32',
    );
    const out = m.forward(x, ids);
    expect(out.features.map((f) => f.shape[3])).toEqual([16, 16, 19, 16]);
    expect(out.scoreMap.shape).toEqual([1, 3, 3, 3]);
    tf.dispose([...out.features, out.scoreMap, out.textEmbeddings, out.globalFeat, out.visualEmbeddings, ids, x]);
    m.dispose();
  });

  it('pixelTextLoss is 0.4 x mean pixel CE of resize(score / tau) (ignored pixels count in the mean)', () => {
    const score = tf.tensor4d([0.1, -0.2, 0.3, 0.05, 0.2, -0.1, 0, 0.4], [1, 2, 2, 2]);
    const labels = tf.tensor3d([0, 1, 255, 0], [1, 2, 2]);
    const got = pixelTextLoss(score, labels).dataSync()[0];
    const s = Array.from(score.dataSync()).map((v) => v / 0.07);
    const ce = (i: number, l: number) => Math.log(Math.exp(s[2 * i]) + Math.exp(s[2 * i + 1])) - s[2 * i + l];
    expect(got).toBeCloseTo((0.4 * (ce(0, 0) + ce(1, 1) + ce(3, 0))) / 4, 5);
    expectError(() => pixelTextLoss(score, tf.tensor3d([0, 3, 0, 0], [1, 2, 2])), /outside \[0, 2\)/);
    tf.dispose([score, labels]);
  });

  it('the segmentor owns its DenseCLIP model: the model keys unprefixed (as mmseg saves them), then neck.* and decode_head.*', () => {
    const fx = loadFixture('denseclip_r50style_64');
    const before = tf.memory().numTensors;
    const model = denseClip(fx.case.config);
    const modelKeys = model.namedParameters().map(([n]) => n);
    const modelBuffers = model.namedBuffers().map(([n]) => n);
    const m = denseClipSegmentor({ denseClip: model, numClasses: 4, neckChannels: 8 });
    const keys = m.namedParameters().map(([n]) => n);
    expect(keys.slice(0, modelKeys.length)).toEqual(modelKeys);
    expect(keys.slice(0, 2)).toEqual(['contexts', 'gamma']);
    const rest = keys.slice(modelKeys.length);
    expect(rest.length).toBeGreaterThan(0);
    expect(rest.every((k) => k.startsWith('neck.') || k.startsWith('decode_head.'))).toBe(true);
    expect(m.namedBuffers().map(([n]) => n)).toEqual([
      ...modelBuffers,
      ...m.neck.namedBuffers('neck.').map(([n]) => n),
      ...m.decodeHead.namedBuffers('decode_head.').map(([n]) => n),
    ]);
    expect(m.children().map(([n]) => n)).toEqual(['backbone', 'text_encoder', 'context_decoder', 'neck', 'decode_head']);
    expect(m.getSubmodule('backbone.layer1')).toBe(model.getSubmodule('backbone.layer1'));
    expect(m.getSubmodule('neck')).toBe(m.neck);
    expect(m.namedModules().map(([n]) => n)).toContain('text_encoder.transformer');
    // the fixture (a DenseCLIP state dict) loads into the segmentor strictly once the neck and head keys are added
    const sd = { ...readSafetensors(fx.weightsBytes!), ...m.neck.stateDict(), ...m.decodeHead.stateDict() };
    const own = m.stateDict();
    const full: Record<string, tf.Tensor> = {};
    for (const k of Object.keys(own)) full[k] = k.startsWith('neck.') || k.startsWith('decode_head.') ? own[k] : sd[k];
    expect(m.loadStateDict(full).loaded.length).toBe(Object.keys(own).length);
    tf.dispose([...Object.values(sd), ...Object.values(own)]);
    m.dispose();
    expect(model.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    fx.dispose();
  });

  it('the segmentor rejects what is not a DenseCLIP model with a clear error', () => {
    const fx = loadFixture('denseclip_r50style_64');
    expectError(() => denseClipSegmentor({ denseClip: fx.case.config as never, numClasses: 4 }), /config object \(build the model first\)/);
    const vit = denseClipVisionTransformer({
      inputResolution: 32,
      patchSize: 16,
      width: 8,
      layers: 1,
      heads: 2,
      outputDim: 8,
      outIndices: [0, 0, 0, 0],
    });
    expectError(() => denseClipSegmentor({ denseClip: vit as never, numClasses: 4 }), /got DenseClipVisionTransformer/);
    vit.dispose();
    expectError(() => denseClipSegmentor({ denseClip: 'denseclip_r18', numClasses: 4 }), /unknown model 'denseclip_r18'/);
    const given = denseClip({
      backbone: { type: 'GivenFeatures' },
      textEncoder: { contextLength: 8, vocabSize: 10, transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, embedDim: 4 },
      contextDecoder: { transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, visualDim: 4 },
      contextLength: 3,
      tokenEmbedDim: 8,
      textDim: 4,
    });
    expectError(() => denseClipSegmentor({ denseClip: given, numClasses: 4 }), /needs an image backbone/);
    expectError(() => denseClipSegmentor({ denseClip: given, numClasses: 0 }), /numClasses must be a positive integer/);
    given.dispose();
    fx.dispose();
  });

  it('bad inputs raise clear errors', () => {
    const v = tf.zeros([1, 2, 2, 4]);
    expectError(() => pixelTextScoreMap(v, tf.zeros([1, 3, 5])), /does not match/);
    expectError(() => pixelTextScoreMap(v, tf.zeros([1, 3, 4]), { tau: 0 }), /tau must be positive/);
    const cfg = {
      backbone: { type: 'GivenFeatures' as const },
      textEncoder: { contextLength: 8, vocabSize: 10, transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, embedDim: 4 },
      contextDecoder: { transformerWidth: 8, transformerHeads: 2, transformerLayers: 1, visualDim: 4 },
      contextLength: 3,
      tokenEmbedDim: 8,
      textDim: 4,
    };
    expectError(() => denseClip({ ...cfg, contextLength: 8 }), /below textEncoder.contextLength/);
    expectError(() => denseClip({ ...cfg, textDim: 6 }), /textDim 6 must equal/);
    expectError(() => denseClip({ ...cfg, contextFeature: 'backbone' as never }), /contextFeature must be 'attention'/);
    const m = denseClip(cfg);
    const feats = [tf.zeros([1, 4, 4, 2]), tf.zeros([1, 4, 4, 2]), tf.zeros([1, 4, 4, 2]), tf.zeros([1, 2, 2, 2])];
    expectError(() => m.afterExtractFeat(feats, tf.zeros([1, 4]), v, tf.zeros([2, 4])), /contextLength = 3/);
    expectError(() => m.textEncoder.forward(tf.tensor2d([[1, 12, 0]]), tf.zeros([1, 5, 8])), /outside \[0, 10\)/);
    expectError(() => m.extractFeat(tf.zeros([1, 32, 32, 3])), /GivenFeatures/);
    tf.dispose([v, ...feats]);
    m.dispose();
  });
});
