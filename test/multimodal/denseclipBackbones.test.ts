import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipResNetWithAttention, denseClip, denseClipVisionTransformer, pixelTextScoreMap } from '../../src/models/denseclip/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { expectRoundTrip } from './denseclipHelpers.js';

const CASES = ['denseclip_vit_p16_64', 'clip_resnet_attn_64', 'denseclip_score_map_k4', 'denseclip_r50style_64'];

/** Compare every named output (NHWC ones are moved to the fixtures' NCHW) and return the max abs errors. */
function expectOutputs(fx: Fixture, got: Record<string, tf.Tensor>, label: string): Record<string, number> {
  const errs: Record<string, number> = {};
  for (const name of Object.keys(fx.case.outputs)) {
    const t = got[name];
    expect(t, `${label}: output ${name} was not produced`).toBeDefined();
    const a = t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t;
    const c = compare(a, fx.io[name], fx.case.atol, fx.case.rtol);
    if (a !== t) a.dispose();
    errs[name] = c.maxAbsErr;
    expect(c.worstExcess, `${label} ${name}: max abs err ${c.maxAbsErr}`).toBeLessThanOrEqual(0);
  }
  console.log(`${label} max abs err ${JSON.stringify(errs)}`);
  return errs;
}

for (const backend of BACKENDS) {
  describe(`denseclip backbones and segmentor glue on ${backend}`, () => {
    const fxs: Record<string, Fixture> = {};
    beforeAll(async () => {
      await useBackend(backend);
      for (const c of CASES) fxs[c] = loadFixture(c);
    });
    afterAll(() => Object.values(fxs).forEach((f) => f.dispose()));

    it('denseclip_vit_p16_64: fpn features, global and dense embeddings, trunk outputs match CLIPVisionTransformer', () => {
      const fx = fxs.denseclip_vit_p16_64;
      const m = denseClipVisionTransformer(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const r = m.forwardWithTrunk(x);
      const got: Record<string, tf.Tensor> = { global_embedding: r.globalEmbedding!, visual_embedding: r.visualEmbedding! };
      r.features.forEach((t, i) => (got[`features.${i}`] = t));
      r.trunk.forEach((t, i) => (got[`trunk.${i}`] = t));
      expectOutputs(fx, got, `${fx.name} [${backend}]`);
      tf.dispose(Object.values(got));
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expectRoundTrip(m, fx);
      m.dispose();
    });

    it('clip_resnet_attn_64: stage maps, global feature and visual embeddings match CLIPResNetWithAttention', () => {
      const fx = fxs.clip_resnet_attn_64;
      const m = clipResNetWithAttention(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const r = m.forward(x);
      const got: Record<string, tf.Tensor> = { global_feat: r.globalFeat, visual_embeddings: r.visualEmbeddings };
      r.features.forEach((t, i) => (got[`features.${i}`] = t));
      expectOutputs(fx, got, `${fx.name} [${backend}]`);
      tf.dispose(Object.values(got));
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expectRoundTrip(m, fx);
      m.dispose();
    });

    it('denseclip_score_map_k4: raw / refined text embeddings, score map (and / tau), concatenated level match after_extract_feat', () => {
      const fx = fxs.denseclip_score_map_k4;
      const m = denseClip(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const feats = [0, 1, 2, 3].map((i) => nchwToNhwc(fx.io[`features.${i}`]));
      const vis = nchwToNhwc(fx.io.visual_embeddings);
      const before = tf.memory().numTensors;
      const r = m.afterExtractFeatDetailed(feats, fx.io.global_feat, vis, fx.io.texts);
      const overTau = pixelTextScoreMap(vis, r.textEmbeddings, { tau: m.r.tau });
      const got: Record<string, tf.Tensor> = {
        text_embeddings_raw: r.textEmbeddingsRaw,
        text_diff: r.textDiff,
        text_embeddings: r.textEmbeddings,
        score_map: r.scoreMap,
        score_map_over_tau: overTau,
        'features_out.3': r.features[3],
      };
      expectOutputs(fx, got, `${fx.name} [${backend}]`);
      r.features.slice(0, 3).forEach((t, i) => expect(compare(t, feats[i], 0, 0).maxAbsErr).toBe(0));
      tf.dispose([...Object.values(got), ...r.features]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([...feats, vis]);
      expectRoundTrip(m, fx);
      m.dispose();
    });

    it('denseclip_r50style_64: image -> backbone -> text refinement -> score map -> level 3 matches DenseCLIP', () => {
      const fx = fxs.denseclip_r50style_64;
      const m = denseClip(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const feat = m.extractFeat(x);
      const r = m.afterExtractFeatDetailed(feat.features, feat.globalFeat, feat.visualEmbeddings, fx.io.texts);
      const fwd = m.forward(x, fx.io.texts);
      const got: Record<string, tf.Tensor> = {
        global_feat: feat.globalFeat,
        visual_embeddings: feat.visualEmbeddings,
        text_embeddings_raw: r.textEmbeddingsRaw,
        text_diff: r.textDiff,
        text_embeddings: r.textEmbeddings,
        score_map: r.scoreMap,
      };
      r.features.forEach((t, i) => (got[`features.${i}`] = t));
      expectOutputs(fx, got, `${fx.name} [${backend}]`);
      // forward gives the same tensors
      expect(compare(fwd.scoreMap, r.scoreMap, 0, 0).maxAbsErr).toBe(0);
      expect(compare(fwd.features[3], r.features[3], 0, 0).maxAbsErr).toBe(0);
      tf.dispose([
        ...Object.values(got),
        ...feat.features,
        fwd.textEmbeddings,
        fwd.scoreMap,
        ...fwd.features,
        fwd.globalFeat,
        fwd.visualEmbeddings,
      ]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      expectRoundTrip(m, fx);
      m.dispose();
    });
  });
}
