/**
 * Loading rules of the official Video Swin / BEVT code: mmaction prefixes and the I3D head skipped, a
 * 2-D Swin checkpoint inflated (checked on a static clip, where the inflated model must equal the 2-D
 * Swin frame by frame), a 3-D checkpoint of another temporal window resized, the variant table.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import { bevtSwin } from '../../src/models/videoSwin/index.js';
import { swin } from '../../src/models/swin/index.js';
import {
  createVideoModel,
  inflateBiasTable,
  listVideoModels,
  resizeBiasTable3d,
  videoSwin,
  videoSwinVariant,
} from '../../src/models/videoSwin/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { Fixture, loadFixture, maxAbsDiff } from '../helpers/fixtures.js';

describe('video swin loading', () => {
  let fx: Fixture;
  beforeAll(async () => {
    await useBackend('cpu');
    fx = loadFixture('video_swin_t4_54');
  });
  afterAll(() => fx.dispose());

  it('an mmaction recognizer checkpoint (backbone. prefix, cls_head.*) loads into the backbone with the head skipped', () => {
    const ref = readSafetensors(fx.weightsBytes!);
    const wrapped: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(ref)) wrapped[`module.backbone.${k}`] = v;
    wrapped['cls_head.fc_cls.weight'] = tf.zeros([10, 64]);
    wrapped['cls_head.fc_cls.bias'] = tf.zeros([10]);
    const a = videoSwin(fx.case.config);
    const b = videoSwin(fx.case.config);
    loadTimmWeights(a, fx.weightsBytes!);
    const res = loadTimmWeights(b, wrapped);
    expect(res.skipped.filter((k) => !k.endsWith('relative_position_index')).sort()).toEqual([
      'cls_head.fc_cls.bias',
      'cls_head.fc_cls.weight',
    ]);
    const x = tf.randomNormal([1, 4, 32, 32, 3], 0, 1, 'float32', 3);
    const ya = a.forward(x) as tf.Tensor;
    const yb = b.forward(x) as tf.Tensor;
    expect(maxAbsDiff(ya.dataSync(), yb.dataSync())).toBe(0);
    tf.dispose([x, ya, yb, ...Object.values(wrapped)]);
    a.dispose();
    b.dispose();
  });

  it('a 2-D Swin checkpoint (timm layout) inflates so that a static clip gives the 2-D model output in every frame', () => {
    manualSeed(4);
    const s2 = swin({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: 2, numClasses: 0 });
    // make the tables informative (a fresh init is near zero)
    const sd = s2.stateDict();
    for (const k of Object.keys(sd))
      if (k.endsWith('relative_position_bias_table')) sd[k] = tf.randomNormal(sd[k].shape, 0, 0.5, 'float32', 5);
    s2.loadStateDict(sd);
    const v = videoSwin({ patchSize: [2, 4, 4], embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: [2, 2, 2], patchNorm: true });
    loadTimmWeights(v, sd, { inflate2d: true });
    const frame = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 6);
    const clip = tf.stack([frame, frame, frame, frame], 1);
    const ref = s2.forwardFeatures(frame);
    const out = v.forward(clip) as tf.Tensor5D;
    expect(out.shape).toEqual([2, 2, 4, 4, 16]);
    for (let d = 0; d < 2; d++) {
      const f = out.slice([0, d, 0, 0, 0], [-1, 1, -1, -1, -1]).reshape(ref.shape);
      expect(maxAbsDiff(f.dataSync(), ref.dataSync())).toBeLessThan(2e-5);
      f.dispose();
    }
    tf.dispose([frame, clip, ref, out, ...Object.values(sd)]);
    s2.dispose();
    v.dispose();
  });

  it('BEVT inflation also fills the image stream: its image tokens use the 2-D patch embedding', () => {
    manualSeed(5);
    const s2 = swin({ imgSize: 64, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 });
    const sd = s2.stateDict();
    const m = bevtSwin({ embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: [2, 2, 2], patchNorm: true });
    const res = loadTimmWeights(m, sd, { strict: false });
    expect(res.loaded).toContain('patch_embed_2d.proj.weight');
    const mine = m.stateDict();
    expect(maxAbsDiff(mine['patch_embed_2d.proj.weight'].dataSync(), sd['patch_embed.proj.weight'].dataSync())).toBe(0);
    const inflated = mine['patch_embed.proj.weight'];
    expect(inflated.shape).toEqual([8, 3, 2, 4, 4]);
    const perFrame = tf.tidy(() => inflated.sum(2).mul(1));
    expect(maxAbsDiff(perFrame.dataSync(), sd['patch_embed.proj.weight'].dataSync())).toBeLessThan(1e-6);
    tf.dispose([perFrame, ...Object.values(sd), ...Object.values(mine)]);
    s2.dispose();
    m.dispose();
  });

  it('2-D bias tables are tiled over time (resized bicubically when the window differs)', () => {
    const t = tf.randomNormal([9, 2], 0, 1, 'float32', 7);
    const tiled = inflateBiasTable(t, [2, 2, 2]);
    expect(tiled.shape).toEqual([27, 2]);
    for (let d = 0; d < 3; d++) expect(maxAbsDiff(tiled.slice([d * 9, 0], [9, 2]).dataSync(), t.dataSync())).toBe(0);
    const c = tf.fill([9, 2], 0.7);
    const resized = inflateBiasTable(c, [2, 4, 4]);
    expect(resized.shape).toEqual([3 * 49, 2]);
    expect(maxAbsDiff(resized.dataSync(), new Float32Array(3 * 49 * 2).fill(0.7))).toBeLessThan(1e-6);
    tf.dispose([t, tiled, c, resized]);
  });

  it('a 3-D checkpoint of another temporal window is resized trilinearly (pretrainedWindowSize or inferred)', () => {
    const small = videoSwin({ ...fx.case.config });
    loadTimmWeights(small, fx.weightsBytes!);
    const sd = small.stateDict();
    const withCfg = videoSwin({ ...fx.case.config, windowSize: [4, 4, 4], pretrainedWindowSize: [2, 4, 4] });
    const inferred = videoSwin({ ...fx.case.config, windowSize: [4, 4, 4] });
    loadTimmWeights(withCfg, sd);
    loadTimmWeights(inferred, sd);
    const key = 'layers.0.blocks.0.attn.relative_position_bias_table';
    const a = withCfg.stateDict();
    const b = inferred.stateDict();
    expect(a[key].shape).toEqual([7 * 7 * 7, 1]);
    expect(maxAbsDiff(a[key].dataSync(), b[key].dataSync())).toBe(0);
    // the table's temporal-offset-0 plane is the centre of the resized 7 offsets (3 -> 7, align_corners False)
    const direct = resizeBiasTable3d(sd[key], [2, 4, 4], [4, 4, 4]);
    expect(maxAbsDiff(direct.dataSync(), a[key].dataSync())).toBe(0);
    const centre = a[key].slice([3 * 49, 0], [49, 1]);
    const src = sd[key].slice([1 * 49, 0], [49, 1]);
    expect(maxAbsDiff(centre.dataSync(), src.dataSync())).toBeLessThan(1e-6);
    tf.dispose([direct, centre, src, ...Object.values(sd), ...Object.values(a), ...Object.values(b)]);
    small.dispose();
    withCfg.dispose();
    inferred.dispose();
  });

  it('the released variants build by name; unknown names and bad clips give clear errors', () => {
    expect(listVideoModels()).toEqual([
      'bevt_swin_base_patch244_window1677_ssv2',
      'bevt_swin_base_patch244_window877_k400',
      'video_swin_base_patch244_window1677',
      'video_swin_base_patch244_window877',
      'video_swin_small_patch244_window877',
      'video_swin_tiny_patch244_window877',
    ]);
    expect(videoSwinVariant('bevt_swin_base_patch244_window1677_ssv2').config.windowSize).toEqual([16, 7, 7]);
    const m = createVideoModel('video_swin_tiny_patch244_window877', { depths: [1, 1, 1, 1] });
    expect(m.featureInfo.map((f) => f.numChs)).toEqual([96, 192, 384, 768]);
    expect(m.featureInfo.map((f) => f.reduction)).toEqual([
      [2, 4, 4],
      [2, 8, 8],
      [2, 16, 16],
      [2, 32, 32],
    ]);
    expectError(() => createVideoModel('video_swin_huge'), /unknown video model 'video_swin_huge'/);
    const img = tf.zeros([1, 32, 32, 3]);
    expectError(() => m.forward(img), /expected an NTHWC clip batch \[B, T, H, W, 3\]/);
    img.dispose();
    m.dispose();
  });
});
