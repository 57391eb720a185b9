import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clipTextTransformer,
  clipVisionTransformer,
  coca,
  CoCa,
  createCoca,
  listOpenClipConfigs,
  openClipConfig,
  textTowerConfig,
  visionTowerConfig,
} from '../../src/models/clip/index.js';
import { clipLoss } from '../../src/models/clip/clipLoss.js';
import { withoutInit } from '../../src/layers/init.js';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { compare, Fixture, loadFixture, maxAbsDiff, nchwToNhwc } from '../helpers/fixtures.js';

const TEXT = { contextLength: 10, vocabSize: 30, width: 16, heads: 2, layers: 2, outputDim: 8 };

function ids(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows.flat(), [rows.length, rows[0].length], 'int32');
}

function run(fn: () => tf.Tensor): Float32Array {
  const t = fn();
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
}

for (const backend of BACKENDS) {
  describe(`CLIP towers: semantics on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('causal argmax pooling: the features ignore every token after EOT, and argmax takes the first maximum', () => {
      const m = clipTextTransformer(TEXT);
      const a = run(() => m.forward(ids([[27, 4, 5, 29, 0, 0, 0]])));
      const b = run(() => m.forward(ids([[27, 4, 5, 29, 7, 8, 9]])));
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
      const c = run(() => m.forward(ids([[27, 4, 5, 29, 29, 0, 0]])));
      expect(maxAbsDiff(a, c)).toBeLessThan(1e-6);
      m.dispose();
    });

    it('bidirectional padding mask: trailing padding does not change first-token features; without the mask it does', () => {
      const masked = clipTextTransformer({ ...TEXT, noCausalMask: true, usePadMask: true, poolType: 'first' });
      const a = run(() => masked.forward(ids([[27, 4, 5, 29, 0, 0]])));
      const b = run(() => masked.forward(ids([[27, 4, 5, 29, 0, 0, 0, 0, 0]])));
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
      const plain = clipTextTransformer({ ...TEXT, noCausalMask: true, poolType: 'first' });
      const c = run(() => plain.forward(ids([[27, 4, 5, 29, 0, 0]])));
      const d = run(() => plain.forward(ids([[27, 4, 5, 29, 0, 0, 0, 0, 0]])));
      expect(maxAbsDiff(c, d)).toBeGreaterThan(1e-4);
      // with the causal mask the padding mask is not used (open_clip)
      expect(clipTextTransformer({ ...TEXT, usePadMask: true }).usePadMask).toBe(false);
      masked.dispose();
      plain.dispose();
    });

    it("'eos', 'first', 'last' and 'none' pooling pick the tokens open_clip picks", () => {
      const text = ids([[27, 4, 2, 5, 2, 0]]);
      for (const [poolType, pos] of [
        ['eos', 2],
        ['first', 0],
        ['last', 5],
      ] as const) {
        const m = clipTextTransformer({ ...TEXT, poolType, projType: 'none' });
        const f = run(() => m.forward(text));
        const tok = run(() => m.forwardTokens(text).tokens);
        expect(maxAbsDiff(f, tok.slice(pos * 16, pos * 16 + 16)), poolType).toBe(0);
        m.dispose();
      }
      const none = clipTextTransformer({ ...TEXT, poolType: 'none' });
      const out = none.forward(text);
      expect(out.shape).toEqual([1, 6, 8]);
      out.dispose();
      none.dispose();
      text.dispose();
    });

    it('CoCa text tower: CLS appended and pooled after ln_final; the legacy mask shifts padding validity by one', () => {
      const legacy = clipTextTransformer({ ...TEXT, embedCls: true });
      expect(legacy.positionalEmbedding.value.shape).toEqual([11, 16]);
      const t = ids([[27, 4, 0, 5]]);
      const { tokens } = legacy.forwardTokens(t);
      expect(tokens.shape).toEqual([1, 4, 16]);
      const correct = clipTextTransformer({ ...TEXT, embedCls: true, correctClsMask: true });
      correct.loadStateDict(legacy.stateDict());
      const a = run(() => legacy.forward(t));
      const b = run(() => correct.forward(t));
      expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-5);
      tokens.dispose();
      t.dispose();
      legacy.dispose();
      correct.dispose();
    });

    it('image tower: final_ln_after_pool leaves the tokens un-normalised; sin-cos positions are fixed; parallel attention pooling', () => {
      const m = clipVisionTransformer({
        imageSize: 16,
        patchSize: 8,
        width: 16,
        layers: 1,
        heads: 2,
        outputDim: 8,
        finalLnAfterPool: true,
        poolType: 'avg',
      });
      const x = tf.randomNormal([1, 16, 16, 3], 0, 1, 'float32', 11);
      const { pooled, tokens } = m.forwardTokens(x);
      const inter = m.forwardIntermediates(x, { intermediatesOnly: true });
      const flat = inter.imageIntermediates[0].reshape([1, 4, 16]);
      expect(compare(tokens, flat, 1e-6, 0).worstExcess).toBeLessThanOrEqual(0);
      expect(pooled.shape).toEqual([1, 8]);
      const s = clipVisionTransformer({
        imageSize: 16,
        patchSize: 8,
        width: 16,
        layers: 1,
        heads: 2,
        outputDim: 8,
        posEmbedType: 'sin_cos_2d',
      });
      expect(s.trainableVariables().length).toBe(s.namedParameters().length - 1);
      const pc = { imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2, outputDim: 16, attnPoolerQueries: 3, attnPoolerHeads: 2 };
      const p = clipVisionTransformer({ ...pc, attentionalPool: 'parallel' });
      const po = p.forwardTokens(x);
      expect(po.pooled.shape).toEqual([1, 16]);
      expect(po.tokens.shape).toEqual([1, 3, 16]);
      // a pooler over tokens as wide as its queries has torch's packed in_proj_weight
      expect(p.namedParameters().some(([n]) => n === 'attn_pool_contrastive.attn.in_proj_weight')).toBe(true);
      expect(p.namedParameters().some(([n]) => n === 'attn_pool_contrastive.attn.k_proj_weight')).toBe(false);
      expectError(() => clipVisionTransformer({ ...pc, outputDim: 8, attentionalPool: 'cascade' }), /needs width === outputDim/);
      tf.dispose([x, pooled, tokens, flat, ...inter.imageIntermediates, po.pooled, po.tokens]);
      m.dispose();
      s.dispose();
      p.dispose();
    });

    it('clipLoss is the mean of the two cross-entropies and accepts a bias', () => {
      const i = tf.tensor2d([
        [1, 0],
        [0, 1],
      ]);
      const t = tf.tensor2d([
        [1, 0],
        [0.6, 0.8],
      ]);
      const l = clipLoss(i, t, 10);
      // rows: image 0 vs [1, 0.6] * 10, image 1 vs [0, 0.8] * 10; the text side is the transpose
      const ce = (row: number[], k: number) => Math.log(row.reduce((a, v) => a + Math.exp(v), 0)) - row[k];
      const expected = (ce([10, 6], 0) + ce([0, 8], 1) + ce([10, 0], 0) + ce([6, 8], 1)) / 4;
      expect(Math.abs(l.dataSync()[0] - expected)).toBeLessThan(1e-5);
      const lb = clipLoss(i, t, 10, -2);
      expect(Math.abs(lb.dataSync()[0] - expected)).toBeLessThan(1e-5);
      tf.dispose([i, t, l, lb]);
    });
  });
}

describe('CLIP weights: whole-checkpoint loading', () => {
  let text: Fixture;
  let vision: Fixture;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    text = loadFixture('clip_text_ctx16_w32');
    vision = loadFixture('clip_vision_p8_32');
  });
  afterAll(() => {
    text.dispose();
    vision.dispose();
  });

  it("a whole OpenAI-style CLIP state dict: the image tower loads with prefix 'visual.', the text tower skips the integer entries", () => {
    const t = readSafetensors(text.weightsBytes!);
    const v = readSafetensors(vision.weightsBytes!);
    const whole: Record<string, tf.Tensor> = {
      ...t,
      logit_scale: tf.scalar(2.6),
      input_resolution: tf.scalar(32, 'int32'),
      context_length: tf.scalar(16, 'int32'),
      vocab_size: tf.scalar(100, 'int32'),
    };
    for (const [k, x] of Object.entries(v)) whole[`visual.${k}`] = x;
    const vm = clipVisionTransformer(vision.case.config);
    const rv = loadTimmWeights(vm, whole, { prefix: 'visual.' });
    expect(rv.loaded.length).toBe(vision.case.weights.num_tensors);
    const feats = vm.forward(nchwToNhwc(vision.io.image));
    expect(compare(feats, vision.io.image_features, vision.case.atol, vision.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    const textOnly: Record<string, tf.Tensor> = {
      ...t,
      input_resolution: whole.input_resolution,
      context_length: whole.context_length,
      vocab_size: whole.vocab_size,
      attn_mask: tf.zeros([16, 16]),
    };
    const tm = clipTextTransformer(text.case.config);
    const rt = loadTimmWeights(tm, textOnly);
    expect(rt.loaded.length).toBe(text.case.weights.num_tensors);
    expect(rt.skipped.sort()).toEqual(['attn_mask', 'context_length', 'input_resolution', 'vocab_size']);
    const tf2 = tm.forward(text.io.text);
    expect(compare(tf2, text.io.text_features, text.case.atol, text.case.rtol).worstExcess).toBeLessThanOrEqual(0);
    tf.dispose([...Object.values(whole), textOnly.attn_mask, feats, tf2]);
    vm.dispose();
    tm.dispose();
  });

  it('openClipConfig gives open_clip model configs that build the towers and CoCa', () => {
    expect(listOpenClipConfigs()).toContain('ViT-B-32');
    const c = openClipConfig('ViT-B-32');
    expect(c.embedDim).toBe(512);
    expect(visionTowerConfig(c.embedDim, c.visionCfg).heads).toBe(12);
    expect(textTowerConfig(c.embedDim, c.textCfg, true).actLayer).toBe('quick_gelu');
    const h = openClipConfig('ViT-H-14');
    expect(visionTowerConfig(h.embedDim, h.visionCfg).heads).toBe(16);
    const cc = openClipConfig('coca_ViT-B-32');
    expect(cc.textCfg.embedCls).toBe(true);
    expect(cc.visionCfg.attentionalPool).toBe(true);
    expectError(() => openClipConfig('ViT-Q-99'), /unknown open_clip model config 'ViT-Q-99'/);
    const m = createCoca('coca_ViT-B-32', {
      visionCfg: { ...cc.visionCfg, layers: 1 },
      textCfg: { ...cc.textCfg, layers: 1 },
      multimodalCfg: { ...cc.multimodalCfg, layers: 1 },
    });
    expect(m.visual.attnPool!.nQueries).toBe(256);
    expect(m.text.positionalEmbedding.value.shape).toEqual([77, 512]);
    expect(m.textDecoder.textProjection.value.shape).toEqual([512, 49408]);
    m.dispose();
    expectError(() => createCoca('ViT-B-32'), /not a CoCa config/);
  });
  it("createModel('coca_ViT-B-32' | 'coca_ViT-L-14', overrides) builds the open_clip configs as a CoCa, like createCoca", () => {
    expect(listModels('coca_*')).toEqual(['coca_ViT-B-32', 'coca_ViT-L-14']);
    const entry = getModelEntry('coca_ViT-B-32');
    expect(entry.kind).toBe('multimodal');
    expect(entry.family).toBe('coca');
    expect(entry.pretrainedCfg.inputSize).toEqual([3, 224, 224]);
    expect(entry.pretrainedCfg.mean).toEqual([0.48145466, 0.4578275, 0.40821073]);
    for (const name of ['coca_ViT-B-32', 'coca_ViT-L-14']) {
      const cc = openClipConfig(name);
      const overrides = {
        visionCfg: { ...cc.visionCfg, layers: 1 },
        textCfg: { ...cc.textCfg, layers: 1 },
        multimodalCfg: { ...cc.multimodalCfg, layers: 1 },
      };
      const before = tf.memory().numTensors;
      const m = createModel<CoCa>(name, overrides, { init: false });
      expect(m).toBeInstanceOf(CoCa);
      const ref = withoutInit(() => createCoca(name, overrides));
      const shapes = (mod: CoCa) => {
        const sd = mod.stateDict();
        const out = Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, t.shape]));
        tf.dispose(Object.values(sd));
        return out;
      };
      expect(shapes(m)).toEqual(shapes(ref));
      expect(m.config).toEqual(ref.config);
      expect(m.embedDim).toBe(cc.embedDim);
      expect(m.visual.width).toBe(cc.visionCfg.width);
      expect(m.text.width).toBe(cc.textCfg.width);
      expect(m.contextLength).toBe(cc.multimodalCfg!.contextLength);
      expect(m.visual.attnPool!.nQueries).toBe(256);
      m.dispose();
      ref.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});

describe('CLIP / CoCa input checks', () => {
  beforeAll(() => tf.setBackend('cpu'));

  it('bad configs and inputs raise clear errors', () => {
    expectError(() => clipTextTransformer({ ...TEXT, poolType: 'mean' as never }), /poolType 'mean'/);
    const m = clipTextTransformer(TEXT);
    expectError(() => m.forward(tf.zeros([1, 4])), /int32 token ids/);
    expectError(() => m.forward(ids([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]])), /text length 11 is not in 1..contextLength \(10\)/);
    expectError(() => m.forward(ids([[1, 99]])), /token id 99 is outside the vocabulary/);
    const v = clipVisionTransformer({ imageSize: 16, patchSize: 8, width: 16, layers: 1, heads: 2, outputDim: 8 });
    expectError(() => v.forward(tf.zeros([1, 24, 24, 3])), /expected 16x16 images/);
    expectError(() => v.forward(tf.zeros([1, 3, 16, 16])), /NHWC/);
    expectError(() => clipVisionTransformer({ width: 16, heads: 3 }), /numHeads 3 does not divide the width 16/);
    expectError(
      () =>
        coca({
          embedDim: 16,
          visionCfg: { width: 16, headWidth: 8, attentionalPool: true },
          textCfg: { width: 32 },
          multimodalCfg: { width: 16 },
        }),
      /textCfg.width \(32\) must equal multimodalCfg.width \(16\)/,
    );
    expectError(
      () =>
        coca({
          embedDim: 16,
          visionCfg: { width: 16, headWidth: 8 },
          textCfg: { width: 16, heads: 2 },
          multimodalCfg: { width: 16, heads: 2 },
        }),
      /attentionalPool/,
    );
    m.dispose();
    v.dispose();
  });
});
