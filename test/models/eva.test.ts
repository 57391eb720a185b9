import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { manualSeed } from '../../src/layers/init.js';
import { resampleAbsPosEmbed } from '../../src/layers/posEmbed.js';
import { applyRope, applyRotEmbedCat, ropeTables, rotaryEmbedCat, rotaryEmbedCatValues } from '../../src/layers/rotaryEmbedding.js';
import { GluMlp, SwiGLU } from '../../src/layers/swiGlu.js';
import { compileMatcher, groupWithMatcher } from '../../src/models/groupMatcher.js';
import { eva, EvaConfig, evaMlp } from '../../src/models/eva/index.js';
import { createModel, getFamily, getModelEntry, listModels } from '../../src/models/registry.js';
import { attach } from '../../src/tasks/attach.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { describeFixtureParity } from '../helpers/fixtureParity.js';
import { compare, Fixture, loadFixture, maxAbsDiff, nchwToNhwc } from '../helpers/fixtures.js';
import { stepAndCheckGradients, trainSteps } from '../helpers/training.js';

const FIXTURE = 'eva02_p8_48';

/** The case's weights as a key -> tensor dict (the caller disposes). */
function weightsOf(fx: Fixture): Record<string, tf.Tensor> {
  return readSafetensors(fx.weightsBytes!);
}

/** The reference state dict under the original BAAI EVA-02 names (a masked-image-modelling checkpoint). */
function toBaaiMim(sd: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(sd)) {
    const n = k
      .replace('mlp.fc1_g', 'mlp.w1')
      .replace('mlp.fc1_x', 'mlp.w2')
      .replace('mlp.fc2', 'mlp.w3')
      .replace('mlp.norm', 'mlp.ffn_ln')
      .replace('attn.q_proj.bias', 'attn.q_bias')
      .replace('attn.v_proj.bias', 'attn.v_bias')
      .replace(/^fc_norm\./, 'norm.');
    out[n] = v;
  }
  return out;
}

describeFixtureParity(FIXTURE, eva, { label: 'EVA' });

for (const backend of BACKENDS) {
  describe(`EVA on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(FIXTURE);
    });
    afterAll(() => fx.dispose());

    it('rotaryEmbedCat and the model table equal the reference rope_embed (ref_feat_shape != grid)', () => {
      const r = fx.case.rope;
      const t = rotaryEmbedCat({
        featShape: r.feat_shape,
        dim: r.dim,
        refFeatShape: r.ref_feat_shape,
        temperature: r.temperature,
        gridOffset: r.grid_offset,
        gridIndexing: r.grid_indexing,
      });
      const c = compare(t, fx.io.rope_embed, fx.case.atol, fx.case.rtol);
      console.log(`rope_embed [${backend}] max abs err ${c.maxAbsErr}`);
      expect(c.worstExcess).toBeLessThanOrEqual(0);
      const m = eva(fx.case.config);
      const own = m.ropeEmbed()!;
      expect(compare(own, fx.io.rope_embed, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([t, own]);
      m.dispose();
    });

    it('applyRotEmbedCat rotates consecutive pairs: x*cos + rot(x)*sin with rot(x)[2i] = -x[2i+1], rot(x)[2i+1] = x[2i]', () => {
      const x = tf.tensor2d([[1, 2, 3, 4]]);
      const emb = tf.tensor2d([[0.5, 0.5, 0.25, 0.25, 2, 2, 3, 3]]); // [sin | cos]
      const y = applyRotEmbedCat(x, emb);
      expect(Array.from(y.dataSync())).toEqual([1 * 2 - 2 * 0.5, 2 * 2 + 1 * 0.5, 3 * 3 - 4 * 0.25, 4 * 3 + 3 * 0.25]);
      const h = applyRotEmbedCat(x, emb, { half: true }); // rotate-half: rot(x) = [-x2, -x3, x0, x1]
      expect(Array.from(h.dataSync())).toEqual([1 * 2 - 3 * 0.5, 2 * 2 - 4 * 0.5, 3 * 3 + 1 * 0.25, 4 * 3 + 2 * 0.25]);
      tf.dispose([x, emb, y, h]);
    });

    it('prepared rope tables rotate the patch tokens exactly as applyRotEmbedCat and leave the prefix tokens alone', () => {
      const opts = { featShape: [2, 3] as [number, number], dim: 8, refFeatShape: [4, 4] as [number, number] };
      const tables = ropeTables(opts, 2);
      const x = tf.randomNormal([3, 8, 8], 0, 1, 'float32', 6); // [B * heads, prefix 2 + 6 tokens, dim]
      const y = applyRope(x, tables);
      const emb = rotaryEmbedCat(opts);
      const patches = x.slice([0, 2, 0], [-1, -1, -1]);
      const ref = applyRotEmbedCat(patches, emb);
      expect(maxAbsDiff(y.slice([0, 2, 0], [-1, -1, -1]).dataSync(), ref.dataSync())).toBe(0);
      expect(maxAbsDiff(y.slice([0, 0, 0], [-1, 2, -1]).dataSync(), x.slice([0, 0, 0], [-1, 2, -1]).dataSync())).toBe(0);
      tf.dispose([x, y, emb, patches, ref, tables.cos, tables.sinSigned, tables.swap]);
    });

    it("RoPE grid: 'xy' puts the w-bands first (rows still row-major over h, w); non-square grids scale each axis by its own ref", () => {
      const base = { featShape: [3, 5] as [number, number], dim: 8, refFeatShape: [2, 4] as [number, number], gridOffset: 0.5 };
      const ij = rotaryEmbedCatValues(base);
      const xy = rotaryEmbedCatValues({ ...base, gridIndexing: 'xy' });
      const swapHalves = (a: Float32Array) => {
        const o = new Float32Array(a.length);
        for (let r = 0; r < a.length / 8; r++) for (let c = 0; c < 8; c++) o[r * 8 + c] = a[r * 8 + ((c + 4) % 8)];
        return o;
      };
      expect(maxAbsDiff(xy.sin, swapHalves(ij.sin))).toBe(0);
      expect(maxAbsDiff(xy.cos, swapHalves(ij.cos))).toBe(0);
      // band 0 has frequency 1: the angle is the scaled position, (h + offset) / H * refH and (w + offset) / W * refW
      const row = (h: number, w: number) => (h * 5 + w) * 8;
      expect(Math.atan2(ij.sin[row(2, 0)], ij.cos[row(2, 0)])).toBeCloseTo(Math.fround(Math.fround(2.5 / 3) * 2), 6);
      expect(Math.atan2(ij.sin[row(0, 3) + 4], ij.cos[row(0, 3) + 4])).toBeCloseTo(Math.fround(Math.fround(3.5 / 5) * 4), 6);
      // the model on a non-square input
      const m = eva({
        imgSize: [32, 48],
        patchSize: 8,
        embedDim: 16,
        depth: 1,
        numHeads: 2,
        useRotPosEmb: true,
        refFeatShape: [4, 4],
        numClasses: 3,
      });
      const z = tf.randomNormal([1, 32, 48, 3], 0, 1, 'float32', 8);
      const maps = m.forwardIntermediates(z, { intermediatesOnly: true });
      expect(maps[0].shape).toEqual([1, 4, 6, 16]);
      expect(m.ropeEmbed()!.shape).toEqual([24, 16]);
      tf.dispose([z, ...maps]);
      m.dispose();
    });

    it('featuresOnly: the NHWC maps of outIndices, head keys skipped, featureInfo per block', () => {
      const m = eva({ ...fx.case.config, featuresOnly: true, outIndices: [0] });
      expect(m.numClasses).toBe(0);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.skipped.sort()).toEqual(['head.bias', 'head.weight']);
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const out = m.forward(x) as tf.Tensor4D[];
      expect(out.length).toBe(1);
      const exp = nchwToNhwc(fx.io['features.0']);
      expect(compare(out[0], exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([...out, exp]);
      expect(tf.memory().numTensors).toBe(before);
      expect(m.featureInfo.map((f) => [f.numChs, f.reduction, f.module])).toEqual([
        [32, 8, 'blocks.0'],
        [32, 8, 'blocks.1'],
      ]);
      // forwardIntermediates: norm applies the final norm (Identity here: avg pooling), stopEarly returns the same levels
      const [final, inter] = m.forwardIntermediates(x, { indices: [-1], stopEarly: true }) as [tf.Tensor, tf.Tensor4D[]];
      expect(final.shape).toEqual([2, 37, 32]);
      const exp1 = nchwToNhwc(fx.io['features.1']);
      expect(compare(inter[0], exp1, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([final, ...inter, exp1, x]);
      m.dispose();
    });

    it('loads the original BAAI names (ffn_ln, w1/w2/w3, q_bias/v_bias), drops RoPE buffers, mask_token, lm_head; norm -> fc_norm', () => {
      const sd = weightsOf(fx);
      const baai = toBaaiMim(sd);
      const extra = {
        mask_token: tf.zeros([1, 1, 32]),
        'lm_head.weight': tf.zeros([8, 32]),
        'lm_head.bias': tf.zeros([8]),
        'rope.freqs_cos': tf.zeros([36, 16]),
        'rope.freqs_sin': tf.zeros([36, 16]),
      };
      expect(Object.keys(baai)).toContain('blocks.0.mlp.ffn_ln.weight');
      expect(Object.keys(baai)).toContain('blocks.1.attn.q_bias');
      expect(Object.keys(baai)).toContain('norm.weight');
      const m = eva(fx.case.config);
      const res = loadTimmWeights(m, { ...baai, ...extra });
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped.sort()).toEqual(['rope.freqs_cos', 'rope.freqs_sin']);
      const x = nchwToNhwc(fx.io.input);
      const y = m.forward(x) as tf.Tensor;
      expect(compare(y, fx.io.logits, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([x, y, ...Object.values(sd), ...Object.values(extra)]);
      m.dispose();
    });

    it('loads OpenCLIP towers: visual.trunk. and visual. prefixes stripped, other keys dropped, derived buffers skipped', () => {
      const x = nchwToNhwc(fx.io.input);
      for (const prefix of ['visual.trunk.', 'visual.']) {
        const sd = weightsOf(fx);
        const wrapped: Record<string, tf.Tensor> = Object.fromEntries(Object.entries(sd).map(([k, v]) => [prefix + k, v]));
        const junk = {
          'text.token_embedding.weight': tf.zeros([4, 8]),
          logit_scale: tf.zeros([]),
          [`${prefix}rope.pos_embed`]: tf.zeros([36, 32]),
        };
        if (prefix === 'visual.trunk.') junk['visual.head.proj.weight'] = tf.zeros([8, 32]);
        const m = eva(fx.case.config);
        const res = loadTimmWeights(m, { ...wrapped, ...junk });
        expect(res.loaded.length, prefix).toBe(fx.case.weights.num_tensors);
        expect(res.skipped, prefix).toEqual([`${prefix}rope.pos_embed`]);
        const y = m.forward(x) as tf.Tensor;
        expect(compare(y, fx.io.logits, fx.case.atol, fx.case.rtol).worstExcess, prefix).toBeLessThanOrEqual(0);
        tf.dispose([y, ...Object.values(sd), ...Object.values(junk)]);
        m.dispose();
      }
      x.dispose();
    });

    it('BAAI names of fused models (w12 packed GluMlp, inner_attn_ln) and the zero k_bias buffer', () => {
      manualSeed(11);
      const cfg: EvaConfig = {
        imgSize: 32,
        patchSize: 8,
        embedDim: 16,
        depth: 1,
        numHeads: 2,
        mlpRatio: 2,
        swigluMlp: true,
        scaleAttnInner: true,
        numClasses: 3,
      };
      const a = eva(cfg);
      const sd = a.stateDict();
      expect(Object.keys(sd)).toEqual(
        expect.arrayContaining([
          'blocks.0.attn.q_bias',
          'blocks.0.attn.v_bias',
          'blocks.0.attn.qkv.weight',
          'blocks.0.mlp.fc1.weight',
          'blocks.0.attn.norm.weight',
        ]),
      );
      expect(Object.keys(sd)).not.toContain('blocks.0.attn.qkv.bias');
      const baai: Record<string, tf.Tensor> = Object.fromEntries(
        Object.entries(sd).map(([k, v]) => [
          k.replace('mlp.fc1', 'mlp.w12').replace('mlp.fc2', 'mlp.w3').replace('attn.norm', 'attn.inner_attn_ln'),
          v,
        ]),
      );
      const kb = tf.zeros([16]);
      const b = eva(cfg);
      const res = loadTimmWeights(b, { ...baai, 'blocks.0.attn.k_bias': kb });
      expect(res.skipped).toEqual(['blocks.0.attn.k_bias']);
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 4);
      const ya = a.forward(x) as tf.Tensor;
      const yb = b.forward(x) as tf.Tensor;
      expect(maxAbsDiff(ya.dataSync(), yb.dataSync())).toBe(0);
      tf.dispose([x, ya, yb, kb, ...Object.values(sd)]);
      a.dispose();
      b.dispose();
    });

    it('a checkpoint for another imgSize: pos_embed resampled (bicubic, antialias, class row kept), RoPE rebuilt for the new grid', () => {
      const m = eva({ ...fx.case.config, imgSize: 64 });
      loadTimmWeights(m, fx.weightsBytes!);
      const sd = weightsOf(fx);
      const want = resampleAbsPosEmbed(sd.pos_embed, [8, 8], { numPrefixTokens: 1, interpolation: 'bicubic', antialias: true });
      expect(maxAbsDiff(m.posEmbed!.value.dataSync(), want.dataSync())).toBe(0);
      const table = m.ropeEmbed()!;
      const ref = rotaryEmbedCat({ featShape: [8, 8], dim: 16, refFeatShape: [4, 4] });
      expect(table.shape).toEqual([64, 32]);
      expect(maxAbsDiff(table.dataSync(), ref.dataSync())).toBe(0);
      const x = tf.randomNormal([1, 64, 64, 3], 0, 1, 'float32', 2);
      const y = m.forward(x) as tf.Tensor;
      expect(y.shape).toEqual([1, 10]);
      expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
      // a patch kernel of another size is resampled (FlexiViT PI-resize)
      const p12 = eva({ ...fx.case.config, patchSize: 12 });
      const res = loadTimmWeights(p12, fx.weightsBytes!);
      expect(res.skipped).toEqual([]);
      expect(p12.patchEmbed.proj.weight.torchShape).toEqual([32, 3, 12, 12]);
      tf.dispose([want, table, ref, x, y, ...Object.values(sd)]);
      m.dispose();
      p12.dispose();
    });

    it('one training step per option set: every variable gets a gradient, nothing leaks; the loss falls', async () => {
      const base = { imgSize: 48, patchSize: 8, embedDim: 32, depth: 2, numHeads: 2, numClasses: 10 };
      const configs: EvaConfig[] = [
        { ...fx.case.config, dropPathRate: 0.1 },
        // fused qkv + packed GluMlp, registers, layer scale, inner attention norm, token pooling, 'xy' RoPE grid
        {
          ...base,
          mlpRatio: 8 / 3,
          swigluMlp: true,
          useRotPosEmb: true,
          ropeGridIndexing: 'xy',
          ropeGridOffset: 0.5,
          numRegTokens: 2,
          initValues: 0.1,
          scaleAttnInner: true,
          globalPool: 'token',
        },
        // post-norm blocks, GELU Mlp with sub-LN, no class token, pos_embed without prefix rows, pre-transformer norm
        {
          ...base,
          usePostNorm: true,
          scaleMlp: true,
          classToken: false,
          noEmbedClass: true,
          usePreTransformerNorm: true,
          attnDropRate: 0.1,
          projDropRate: 0.1,
        },
      ];
      const x = tf.randomNormal([2, 48, 48, 3], 0, 1, 'float32', 1);
      const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), 10);
      for (const [i, cfg] of configs.entries()) {
        manualSeed(5);
        const model = eva(cfg);
        expect(model.trainableVariables().length).toBe(model.namedParameters().length);
        const loss = (training: boolean) => () =>
          tf.losses.softmaxCrossEntropy(labels, model.forward(x, { training }) as tf.Tensor) as tf.Scalar;
        const opt = tf.train.sgd(0.5);
        const before = tf.memory().numTensors;
        if (i === 0) {
          stepAndCheckGradients(model, loss(true), opt, { label: `config ${i}`, expectUpdate: true });
          expect(tf.memory().numTensors).toBe(before);
        } else {
          const { losses } = await trainSteps(model, loss(false), opt, 4);
          expect(losses[3], `config ${i}: losses ${losses.join(', ')}`).toBeLessThan(losses[0]);
        }
        opt.dispose();
        model.dispose();
      }
      tf.dispose([x, labels]);
    });

    it('the simple feature pyramid runs on the stride-16 block map as on ViTDet', () => {
      const b = getFamily('eva').tiny(64);
      const sfp = simpleFeaturePyramid({ inChans: b.featureInfo[1].numChs, outChans: 8, topBlock: true });
      const m = attach(b, sfp);
      const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 3);
      const before = tf.memory().numTensors;
      const pyr = m.forward(x) as tf.Tensor[];
      expect(tf.memory().numTensors).toBe(before + pyr.length);
      expect(sfp.outStrides).toEqual([4, 8, 16, 32, 64]);
      expect(pyr.map((p) => p.shape)).toEqual(sfp.outStrides.map((s) => [2, 64 / s, 64 / s, 8]).map((s) => s.map(Math.ceil)));
      tf.dispose([x, ...pyr]);
      sfp.dispose();
      b.dispose();
    });
  });
}

describe('EVA variants, config, matcher and errors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it("registers timm's EVA names with their configs and pretrained cfgs", () => {
    const names = listModels('eva*');
    const all = [
      'eva02_tiny_patch14_224',
      'eva02_tiny_patch14_336',
      'eva02_small_patch14_224',
      'eva02_small_patch14_336',
      'eva02_base_patch14_224',
      'eva02_base_patch14_448',
      'eva02_large_patch14_224',
      'eva02_large_patch14_448',
      'eva02_base_patch16_clip_224',
      'eva02_large_patch14_clip_224',
      'eva02_large_patch14_clip_336',
      'eva02_enormous_patch14_clip_224',
      'eva_giant_patch14_224',
      'eva_giant_patch14_336',
      'eva_giant_patch14_560',
      'eva_giant_patch14_clip_224',
    ];
    for (const n of all) expect(names).toContain(n);
    expect(getModelEntry('eva02_base_patch14_448').config).toMatchObject({
      imgSize: 448,
      patchSize: 14,
      embedDim: 768,
      depth: 12,
      numHeads: 12,
      qkvFused: false,
      swigluMlp: true,
      scaleMlp: true,
      useRotPosEmb: true,
      refFeatShape: [16, 16],
      numClasses: 1000,
    });
    expect(getModelEntry('eva02_small_patch14_224').config).toMatchObject({
      embedDim: 384,
      numHeads: 6,
      swigluMlp: true,
      numClasses: 0,
      mlpRatio: 2.6666666666666665,
    });
    expect(getModelEntry('eva02_small_patch14_224').config.scaleMlp).toBeUndefined();
    expect(getModelEntry('eva02_base_patch16_clip_224').config).toMatchObject({
      patchSize: 16,
      scaleAttnInner: true,
      globalPool: 'token',
      numClasses: 512,
    });
    expect(getModelEntry('eva02_enormous_patch14_clip_224').config).toMatchObject({
      embedDim: 1792,
      depth: 64,
      usePostNorm: true,
      numClasses: 1024,
    });
    expect(getModelEntry('eva_giant_patch14_clip_224').config).toMatchObject({
      embedDim: 1408,
      depth: 40,
      globalPool: 'token',
      numClasses: 1024,
    });
    expect(getModelEntry('eva02_large_patch14_clip_336').pretrainedCfg).toMatchObject({
      inputSize: [3, 336, 336],
      cropPct: 1.0,
      numClasses: 768,
      mean: [0.48145466, 0.4578275, 0.40821073],
    });
    expect(getModelEntry('eva_giant_patch14_560').pretrainedCfg).toMatchObject({ inputSize: [3, 560, 560], mean: [0.485, 0.456, 0.406] });
    expect(getModelEntry('eva02_tiny_patch14_224').pretrainedCfg).toMatchObject({
      numClasses: 0,
      hfHubId: 'timm/eva02_tiny_patch14_224.mim_in22k',
    });
  });

  it('MLP widths: int(dim * mlpRatio) (2730 for EVA-02-L, 15360 for EVA-02-E, 6144 for EVA-g), packed GluMlp for Ti/S', () => {
    const large = evaMlp({
      dim: 1024,
      mlpRatio: getModelEntry('eva02_large_patch14_224').config.mlpRatio as number,
      swigluMlp: true,
      scaleMlp: true,
      projDrop: 0,
    });
    expect(large).toBeInstanceOf(SwiGLU);
    expect((large as SwiGLU).fc1G.weight.torchShape).toEqual([2730, 1024]);
    large.dispose();
    const tiny = evaMlp({ dim: 192, mlpRatio: (4 * 2) / 3, swigluMlp: true, scaleMlp: false, projDrop: 0 });
    expect(tiny).toBeInstanceOf(GluMlp);
    expect((tiny as GluMlp).fc1.weight.torchShape).toEqual([1024, 192]);
    expect((tiny as GluMlp).fc2.weight.torchShape).toEqual([192, 512]);
    tiny.dispose();
    expect(Math.floor(1792 * (getModelEntry('eva02_enormous_patch14_clip_224').config.mlpRatio as number))).toBe(15360);
    expect(Math.floor(1408 * (getModelEntry('eva_giant_patch14_224').config.mlpRatio as number))).toBe(6144);
  });

  it('eva02_tiny_patch14_224 has the parameter count of its architecture and the timm key order', () => {
    const m = createModel('eva02_tiny_patch14_224');
    const d = 192;
    const h = 512;
    const perBlock = 4 * d + (3 * d * d + 2 * d) + (d * d + d) + (d * 2 * h + 2 * h) + (h * d + d);
    expect(m.numParams()).toBe(d + 257 * d + (3 * 14 * 14 * d + d) + 12 * perBlock + 2 * d);
    const keys = m.namedParameters().map(([n]) => n);
    expect(keys.slice(0, 4)).toEqual(['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']);
    expect(keys.slice(4, 9)).toEqual([
      'blocks.0.norm1.weight',
      'blocks.0.norm1.bias',
      'blocks.0.attn.q_bias',
      'blocks.0.attn.v_bias',
      'blocks.0.attn.qkv.weight',
    ]);
    expect(keys.slice(-2)).toEqual(['fc_norm.weight', 'fc_norm.bias']);
    m.dispose();
  });

  it('config resolves timm defaults and rebuilds the same model; group matcher and no-weight-decay as timm', () => {
    const m = eva({ imgSize: 32, patchSize: 8, embedDim: 16, depth: 2, numHeads: 2, numRegTokens: 1, globalPool: 'token', numClasses: 4 });
    expect(m.config).toMatchObject({
      imgSize: [32, 32],
      qkvFused: true,
      mlpRatio: 4,
      refFeatShape: null,
      ropeTemperature: 10000,
      ropeGridIndexing: 'ij',
    });
    const again = getFamily('eva').create(m.config);
    expect(again.namedParameters().map(([n, p]) => [n, p.torchShape])).toEqual(m.namedParameters().map(([n, p]) => [n, p.torchShape]));
    const names = m.namedParameters().map(([n]) => n);
    expect(names).toContain('norm.weight');
    expect(names).not.toContain('fc_norm.weight');
    const ids = groupWithMatcher(names, m.groupMatcher());
    expect(ids.get('cls_token')).toBe(0);
    expect(ids.get('patch_embed.proj.weight')).toBe(0);
    expect(ids.get('blocks.0.attn.qkv.weight')).toBe(1);
    expect(ids.get('blocks.1.mlp.fc2.bias')).toBe(2);
    expect(ids.get('norm.weight')).toBe(2);
    expect(compileMatcher(m.groupMatcher())('head.weight')).toEqual([Infinity]);
    expect(m.noWeightDecay()).toEqual(['pos_embed', 'cls_token']);
    const sd = m.stateDict();
    expect(m.derivedBuffers().filter((re) => ['rope.pos_embed', 'blocks.3.attn.k_bias'].some((k) => re.test(k))).length).toBe(2);
    expect(m.derivedBuffers().some((re) => Object.keys(sd).some((k) => re.test(k)))).toBe(false);
    tf.dispose(Object.values(sd));
    m.resetClassifier(0, 'avg');
    const x = tf.zeros([1, 32, 32, 3]);
    const y = m.forward(x) as tf.Tensor;
    expect(y.shape).toEqual([1, 16]);
    tf.dispose([x, y]);
    m.dispose();
    again.dispose();
  });

  it('rejects bad configs, inputs and checkpoints with clear errors', () => {
    const base: EvaConfig = { imgSize: 32, patchSize: 8, embedDim: 32, depth: 1, numHeads: 2 };
    expectError(() => eva({ ...base, numHeads: 3 }), /numHeads 3 does not divide embedDim 32/);
    expectError(() => eva({ ...base, imgSize: 30 }), /not a positive multiple of patchSize 8/);
    expectError(() => eva({ ...base, embedDim: 24, numHeads: 4, useRotPosEmb: true }), /RoPE needs a head dimension divisible by 4.*= 6/);
    expectError(() => eva({ ...base, globalPool: 'map' as never }), /globalPool 'map' is not supported/);
    expectError(() => eva({ ...base, ropeType: 'mixed' as never }), /ropeType 'mixed' is not supported/);
    expectError(() => eva({ ...base, dynamicImgSize: true as never }), /dynamicImgSize is not supported/);
    expectError(() => eva({ ...base, patchDropRate: 0.1 as never }), /patchDropRate 0.1 is not supported/);
    expectError(() => eva({ ...base, numRegTokens: -1 }), /numRegTokens must be a non-negative integer/);
    expectError(() => eva({ ...base, refFeatShape: [0, 4] }), /refFeatShape must be positive/);
    const m = eva(base);
    expectError(() => m.forward(tf.zeros([1, 48, 48, 3])), /expected 32x32 input \(imgSize\), got 48x48/);
    expectError(() => m.forward(tf.zeros([1, 32, 32, 1])), /expected 3 input channels/);
    expectError(() => m.forward(tf.zeros([32, 32, 3])), /expected an NHWC image batch/);
    expectError(() => m.resetClassifier(2, 'map'), /globalPool 'map' is not supported/);
    const rect = eva({ ...base, imgSize: [16, 40] });
    const sd = rect.stateDict();
    expectError(() => loadTimmWeights(m, sd), /pos_embed has 10 grid tokens .* not a square grid/);
    tf.dispose(Object.values(sd));
    const missing = eva({ ...base, depth: 2 });
    const sd1 = m.stateDict();
    expectError(() => loadTimmWeights(missing, sd1), /blocks\.1\./);
    tf.dispose(Object.values(sd1));
    expectError(() => rotaryEmbedCat({ featShape: [2, 2], dim: 6 }), /multiple of 4, got 6/);
    rect.dispose();
    missing.dispose();
    m.dispose();
  });
});
