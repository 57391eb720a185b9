/** Clear errors when a head gets features whose channels, number or strides do not match its config. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attach } from '../../src/tasks/attach.js';
import { classifierHead } from '../../src/layers/classifier.js';
import { fpn } from '../../src/heads/fpn.js';
import { segmentationHead } from '../../src/heads/segmentationHead.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { swin } from '../../src/models/swin/index.js';
import { vit } from '../../src/models/vit/index.js';
import { runWithAdapters, StageAdapters, stageAdapters } from '../../src/transfer/adapter.js';
import { useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';

const tinySwin = (embedDim = 8) =>
  swin({ imgSize: 32, patchSize: 4, embedDim, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 });
const tinyVit = () => vit({ imgSize: 32, patchSize: 16, embedDim: 16, depth: 2, numHeads: 2, numClasses: 0 });

describe('head configuration errors', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('attach: backbone channels that differ from the head inChannels are named', () => {
    const b = tinySwin();
    const h = uperNet({ inChannels: [8, 16, 32, 32], channels: 8, numClasses: 3 });
    expectError(
      () => attach(b, h),
      /uperNet was built with inChannels \[8, 16, 32, 32\] but the backbone's feature channels are \[8, 16, 32, 64\]/,
    );
    const f = fpn({ inChannels: [8, 16, 32], outChans: 8 });
    expectError(() => attach(b, f), /fpn was built for 3 feature levels .* but the backbone provides 4/);
    const s = segmentationHead({ inChannels: [8, 16, 32, 64], numClasses: 3, inStrides: [4, 8, 16, 16] });
    expectError(
      () => attach(b, s),
      /segmentationHead was built for strides \[4, 8, 16, 16\] but the backbone's feature strides are \[4, 8, 16, 32\]/,
    );
    for (const m of [h, f, s, b]) m.dispose();
  });

  it('attach: pyramid heads on a single-stride backbone, or a pyramid at a missing stride', () => {
    const b = tinyVit();
    const f = fpn({ inChannels: [16, 16], outChans: 8 });
    expectError(() => attach(b, f), /fpn needs feature strides increasing by 2x, got \[16, 16\].*simpleFeaturePyramid/);
    const sfp = simpleFeaturePyramid({ inChans: 16, outChans: 8, inStride: 8 });
    expectError(() => attach(b, sfp), /takes a stride-8 map but the backbone's levels have strides \[16, 16\]/);
    const sfp16 = simpleFeaturePyramid({ inChans: 12, outChans: 8 });
    expectError(
      () => attach(b, sfp16),
      /simpleFeaturePyramid was built with inChannels \[12\] but the backbone's feature channels are \[16\]/,
    );
    const up = uperNet({ inChannels: [8, 8, 8], channels: 8, numClasses: 2 });
    const neck = simpleFeaturePyramid({ inChans: 16, outChans: 8 });
    expectError(() => attach(b, up, { neck }), /uperNet was built for 3 feature levels .* provides 4 .*strides \[4, 8, 16, 32\]/);
    for (const m of [f, sfp, sfp16, up, neck, b]) m.dispose();
  });

  it('forward: wrong channels, wrong number of levels, strides that do not halve', () => {
    const h = uperNet({ inChannels: [4, 6, 8], channels: 4, numClasses: 2 });
    const ok = [tf.zeros([1, 8, 8, 4]), tf.zeros([1, 4, 4, 6]), tf.zeros([1, 2, 2, 8])];
    const badC = [ok[0], ok[1], tf.zeros([1, 2, 2, 5])];
    const badS = [ok[0], ok[1], tf.zeros([1, 4, 4, 8])];
    expectError(
      () => h.forward(badC),
      /uperNet: feature level 2 has 5 channels \(shape \[1, 2, 2, 5\]\) but the head was built with inChannels\[2\] = 8/,
    );
    expectError(() => h.forward(ok.slice(0, 2)), /uperNet was built for 3 feature levels .* but got 2 maps/);
    expectError(() => h.forward(badS), /uperNet expects strides increasing by 2x between levels, but level 1 is 4x4 and level 2 is 4x4/);
    const f = fpn({ inChannels: [4, 6, 8], outChans: 4 });
    expectError(() => f.forward(badS), /fpn expects strides increasing by 2x/);
    const sfp = simpleFeaturePyramid({ inChans: 6, outChans: 4 });
    expectError(() => sfp.forward(ok[0]), /simpleFeaturePyramid was built with inChans 6 but got a map with 4 channels/);
    const seg = segmentationHead({ inChannels: [4, 6], numClasses: 2 });
    expectError(() => seg.forward([ok[0], ok[2]]), /segmentationHead: feature level 1 has 8 channels .* inChannels\[1\] = 6/);
    const cls = classifierHead({ inChans: 6, numClasses: 2 });
    expectError(() => cls.forward(ok[0]), /classifier head expected 6 channels, got 4/);
    tf.dispose([...ok, badC[2], badS[2]]);
    for (const m of [h, f, sfp, seg, cls]) m.dispose();
  });

  it('adapters built for another backbone are refused', () => {
    const a = tinySwin(8);
    const b = tinySwin(4);
    const ad = stageAdapters(a);
    const seg = segmentationHead({ inChannels: [4, 8, 16, 32], numClasses: 2 });
    expectError(() => attach(b, seg, { adapters: ad }), /the adapters were built for levels/);
    seg.dispose();
    a.dispose();
    b.dispose();
    ad.dispose();
  });

  it('an adapter whose stage module the backbone never calls is an error, not a silent skip', () => {
    const b = tinySwin(8);
    const ad = new StageAdapters([{ numChs: 64, module: 'norm' }]);
    const x = tf.zeros([1, 32, 32, 3]);
    const before = tf.memory().numTensors;
    expectError(
      () => runWithAdapters(b, ad, () => b.forwardIntermediates(x, { intermediatesOnly: true })),
      /adapters were not applied: the backbone's forward never called the stage module\(s\) norm/,
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.prototype.hasOwnProperty.call(b.norm, 'forward')).toBe(false); // restored
    x.dispose();
    ad.dispose();
    b.dispose();
  });

  it('invalid head configurations', () => {
    expectError(() => simpleFeaturePyramid({ inChans: 8, outChans: 4, scaleFactors: [3] }), /scaleFactors\[0\] = 3 is not supported/);
    expectError(() => simpleFeaturePyramid({ inChans: 8, outChans: 4, scaleFactors: [2, 4] }), /must increase by 2x/);
    expectError(() => fpn({ inChannels: [], outChans: 4 }), /inChannels must be a non-empty list/);
    expectError(() => fpn({ inChannels: [4, 8], outChans: 4, numOuts: 1 }), /numOuts 1 is smaller than the 2 input levels/);
    expectError(() => uperNet({ inChannels: [4], channels: 4, numClasses: 0 }), /numClasses must be a positive integer, got 0/);
  });
});
