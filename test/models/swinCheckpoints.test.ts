import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resizeRelPosBiasTable } from '../../src/layers/relativePosition.js';
import { createModel, listModels } from '../../src/models/registry.js';
import '../../src/models/swin/index.js';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { useBackend } from '../helpers/backends.js';
import { compare, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

/** Rewrite a timm state dict into the original Microsoft layout (downsample at the end of a stage, `head.weight`). */
function toMicrosoftLayout(sd: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(sd)) {
    let nk = k.replace(/^layers\.(\d+)\.downsample/, (_, i) => `layers.${Number(i) - 1}.downsample`);
    nk = nk.replace(/^head\.fc\./, 'head.');
    out[nk] = v;
  }
  return out;
}

describe('Swin checkpoints: layouts, buffers, heads, other window sizes', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  for (const [name, build] of [
    ['swin_p4w4_64', swin],
    ['swinv2_p4w4_64', swinV2],
  ] as const) {
    it(`${name}: the original Microsoft layout with persistent buffers loads to the same logits`, () => {
      const fx = loadFixture(name);
      const sd = toMicrosoftLayout(readSafetensors(fx.weightsBytes!));
      expect(Object.keys(sd)).toContain('layers.0.downsample.reduction.weight');
      expect(Object.keys(sd)).toContain('head.weight');
      // originals also store the derived buffers
      sd['layers.0.blocks.0.attn.relative_position_index'] = tf.zeros([256], 'int32');
      sd['layers.0.blocks.1.attn_mask'] = tf.zeros([16, 16, 16]);
      const m = build(fx.case.config);
      const res = loadTimmWeights(m, sd);
      expect(res.skipped).toEqual(
        expect.arrayContaining(['layers.0.blocks.0.attn.relative_position_index', 'layers.0.blocks.1.attn_mask']),
      );
      const x = nchwToNhwc(fx.io.input);
      const y = m.forwardLogits(x);
      expect(compare(y, fx.io.logits, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
      tf.dispose([x, y, ...Object.values(sd)]);
      m.dispose();
      fx.dispose();
    });

    it(`${name}: head keys are skipped for numClasses 0 and featuresOnly models`, () => {
      const fx = loadFixture(name);
      for (const over of [{ numClasses: 0 }, { featuresOnly: true, outIndices: [-1, 0] }]) {
        const m = build({ ...fx.case.config, ...over });
        const res = loadTimmWeights(m, fx.weightsBytes!);
        expect(res.skipped.sort()).toEqual(['head.fc.bias', 'head.fc.weight']);
        const x = nchwToNhwc(fx.io.input);
        if ('featuresOnly' in over) {
          const feats = m.forward(x) as tf.Tensor4D[];
          expect(feats.map((f) => f.shape)).toEqual([
            [2, 16, 16, 16],
            [2, 4, 4, 64],
          ]);
          const exp = nchwToNhwc(fx.io['features.0']);
          expect(compare(feats[1], nchwToNhwc(fx.io['features.2']), fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
          expect(compare(feats[0], exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
          tf.dispose([...feats, exp]);
        } else {
          const pooled = m.forward(x) as tf.Tensor;
          expect(compare(pooled, fx.io.pre_logits, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
          pooled.dispose();
        }
        x.dispose();
        m.dispose();
      }
      fx.dispose();
    });
  }

  it('SwinV2 loads into a model with another window size unchanged (CPB needs no resizing)', () => {
    const fx = loadFixture('swinv2_p4w4_64');
    const m = swinV2({ ...fx.case.config, windowSize: 8, pretrainedWindowSizes: [4, 4, 4] });
    const res = loadTimmWeights(m, fx.weightsBytes!);
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
    const x = nchwToNhwc(fx.io.input);
    const y = m.forwardLogits(x);
    expect(y.shape).toEqual([2, 10]);
    expect(Number.isFinite(y.sum().dataSync()[0])).toBe(true);
    tf.dispose([x, y]);
    m.dispose();
    fx.dispose();
  });

  it('Swin loads into a model with a larger window: bias tables resized (BEiT geometric grid, as timm), logits finite', () => {
    const fx = loadFixture('swin_p4w4_64');
    const m = swin({ ...fx.case.config, windowSize: 8 });
    loadTimmWeights(m, fx.weightsBytes!);
    expect(m.layers.items[0].blocks.items[0].attn.opts.windowSize).toEqual([8, 8]);
    const t = (m.layers.items[0].blocks.items[0].attn as unknown as { relativePositionBiasTable: { value: tf.Tensor } })
      .relativePositionBiasTable.value;
    expect(t.shape).toEqual([225, 1]);
    tf.dispose(m.forwardLogits(tf.zeros([1, 64, 64, 3])));
    m.dispose();
    fx.dispose();
  });

  it('resizeRelPosBiasTable: identity at equal size; exact at the centre and on the source grid points along the axes', () => {
    const src = 7; // window 4
    const vals = Array.from({ length: src * src }, (_, i) => Math.sin(i * 0.7) + 0.1 * i);
    const table = tf.tensor2d(vals, [src * src, 1]);
    const same = resizeRelPosBiasTable(table, [4, 4]);
    expect(Array.from(same.dataSync())).toEqual(Array.from(table.dataSync()));
    const big = resizeRelPosBiasTable(table, [6, 6]); // 11 x 11
    const b = big.dataSync();
    // the centre offset (0, 0) is a source grid point: value preserved exactly
    expect(b[5 * 11 + 5]).toBeCloseTo(vals[3 * 7 + 3], 6);
    // offset (0, +1): the source grid has a point at distance 1 (dis[0] = 1) -> exact
    expect(b[5 * 11 + 6]).toBeCloseTo(vals[3 * 7 + 4], 6);
    tf.dispose([table, same, big]);
  });

  it('registry: every published Swin and SwinV2 variant is listed; small ones build with the right feature info', () => {
    const names = listModels('swin*');
    for (const n of [
      'swin_tiny_patch4_window7_224',
      'swin_small_patch4_window7_224',
      'swin_base_patch4_window7_224',
      'swin_base_patch4_window12_384',
      'swin_large_patch4_window7_224',
      'swin_large_patch4_window12_384',
      'swin_s3_tiny_224',
      'swinv2_tiny_window8_256',
      'swinv2_tiny_window16_256',
      'swinv2_small_window8_256',
      'swinv2_small_window16_256',
      'swinv2_base_window8_256',
      'swinv2_base_window16_256',
      'swinv2_base_window12_192',
      'swinv2_base_window12to16_192to256',
      'swinv2_base_window12to24_192to384',
      'swinv2_large_window12_192',
      'swinv2_large_window12to16_192to256',
      'swinv2_large_window12to24_192to384',
    ])
      expect(names).toContain(n);
    const m = createModel('swinv2_tiny_window8_256', { numClasses: 0 });
    expect(m.featureInfo.map((f) => [f.numChs, f.reduction])).toEqual([
      [96, 4],
      [192, 8],
      [384, 16],
      [768, 32],
    ]);
    // parameter count from the SwinV2 architecture, term by term
    const dims = [96, 192, 384, 768];
    const heads = [3, 6, 12, 24];
    const depths = [2, 2, 6, 2];
    let expected = 3 * 16 * 96 + 96 + 2 * 96; // patch_embed proj + norm
    dims.forEach((c, i) => {
      if (i > 0) expected += 4 * dims[i - 1] * c + 2 * c; // downsample reduction + norm(2C)
      const block =
        2 * c + (3 * c * c + 2 * c + heads[i] + (2 * 512 + 512) + 512 * heads[i] + c * c + c) + 2 * c + (c * 4 * c + 4 * c + 4 * c * c + c);
      expected += depths[i] * block;
    });
    expected += 2 * 768; // final norm
    expect(m.numParams()).toBe(expected);
    m.dispose();
    expect(() => createModel('swinv2_tiny_window9_256')).toThrow(/unknown model 'swinv2_tiny_window9_256'; similar names: swinv2_/);
  });
});
