import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { StateDictError } from '../../src/layers/module.js';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors } from '../../src/weights/safetensors.js';
import { errorOf } from '../helpers/errors.js';
import { loadFixture } from '../helpers/fixtures.js';

const tiny = { imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: 4, numClasses: 3 };

describe('Swin clear errors', () => {
  it('wrong channel count names the count and the layout', () => {
    const m = swin(tiny);
    const x = tf.zeros([1, 32, 32, 4]);
    const e = errorOf(() => m.forward(x));
    expect(e).toBeInstanceOf(VisBackbonesError);
    expect(e.message).toMatch(/expected 3 input channels \(NHWC, last axis\), got 4/);
    const nchw = tf.zeros([1, 3, 32, 32]);
    expect(errorOf(() => m.forward(nchw)).message).toMatch(/expected 3 input channels.*got 32/);
    tf.dispose([x, nchw]);
    m.dispose();
  });

  it('input of another size than imgSize', () => {
    const m = swinV2(tiny);
    const x = tf.zeros([1, 64, 64, 3]);
    expect(errorOf(() => m.forward(x)).message).toMatch(/expected 32x32 input \(imgSize\), got 64x64/);
    x.dispose();
    m.dispose();
  });

  it('image size that does not fit patch x window x 2^stage', () => {
    expect(errorOf(() => swin({ ...tiny, imgSize: 30 })).message).toMatch(/image size 30x30 is not divisible by patchSize 4/);
    expect(errorOf(() => swin({ ...tiny, imgSize: 40 })).message).toMatch(/stage 0 resolution 10x10 .* not divisible by windowSize 4/);
    expect(errorOf(() => swin({ ...tiny, imgSize: 36, windowSize: 3 })).message).toMatch(/cannot be halved 1 times for stage 1/);
  });

  it('heads not dividing the width', () => {
    const e = errorOf(() => swin({ ...tiny, numHeads: [3, 2] }));
    expect(e).toBeInstanceOf(VisBackbonesError);
    expect(e.message).toMatch(/numHeads\[0\] = 3 does not divide the stage width 8/);
    expect(errorOf(() => swin({ ...tiny, numHeads: [1] })).message).toMatch(/numHeads has 1 entries but depths has 2/);
  });

  it('checkpoint with a missing, an unexpected and a wrongly shaped key: one error listing all three', () => {
    const fx = loadFixture('swin_p4w4_64');
    const sd = readSafetensors(fx.weightsBytes!);
    const m = swin(fx.case.config);
    const removed = sd['layers.1.blocks.0.mlp.fc1.bias'];
    delete sd['layers.1.blocks.0.mlp.fc1.bias'];
    sd['layers.9.extra.weight'] = tf.zeros([2]);
    const bad = sd['norm.weight'];
    sd['norm.weight'] = tf.zeros([5]);
    const e = errorOf(() => loadTimmWeights(m, sd));
    expect(e).toBeInstanceOf(StateDictError);
    expect(e.message).toMatch(/missing keys \(1\): layers\.1\.blocks\.0\.mlp\.fc1\.bias/);
    expect(e.message).toMatch(/unexpected keys \(1\): layers\.9\.extra\.weight/);
    expect(e.message).toMatch(/norm\.weight: checkpoint \[5\] vs model \[64\]/);
    // non-strict loading loads the rest and reports what it skipped
    const res = loadTimmWeights(m, sd, { strict: false });
    expect(res.skipped).toContain('layers.9.extra.weight');
    expect(res.skipped).toContain('norm.weight');
    expect(res.loaded.length).toBe(fx.case.weights.num_tensors - 2);
    tf.dispose([removed, bad, ...Object.values(sd)]);
    m.dispose();
    fx.dispose();
  });

  it('truncated checkpoint bytes raise the library error, not a RangeError', () => {
    const fx = loadFixture('swin_p4w4_64');
    const m = swin(fx.case.config);
    const e = errorOf(() => loadTimmWeights(m, fx.weightsBytes!.subarray(0, 1000)));
    expect(e).toBeInstanceOf(VisBackbonesError);
    expect(e.message).toMatch(/safetensors: .*(truncated|outside)/);
    m.dispose();
    fx.dispose();
  });
});
