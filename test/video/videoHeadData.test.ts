/**
 * The I3D-style video head, the moving-shapes clips, featuresOnly stage selection and input errors of
 * the video models.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticVideo, VIDEO_DIRECTIONS } from '../../src/data/syntheticVideo.js';
import { videoClsHead } from '../../src/heads/videoHead.js';
import { bevtSwin } from '../../src/models/videoSwin/index.js';
import { videoSwin } from '../../src/models/videoSwin/index.js';
import { useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

describe('video head, data and checks', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('videoClsHead averages over (T, H, W) then applies fc_cls; keys fc_cls.*', () => {
    const head = videoClsHead({ inChans: 6, numClasses: 3 });
    expect(Object.keys(head.stateDict()).sort()).toEqual(['fc_cls.bias', 'fc_cls.weight']);
    const x = tf.randomNormal([2, 2, 3, 3, 6], 0, 1, 'float32', 1);
    const y = head.forward(x);
    expect(y.shape).toEqual([2, 3]);
    const sd = head.stateDict();
    const manual = tf.tidy(() => tf.add(tf.matMul(tf.mean(x, [1, 2, 3]), sd['fc_cls.weight'], false, true), sd['fc_cls.bias']));
    expect(maxAbsDiff(y.dataSync(), manual.dataSync())).toBeLessThan(1e-6);
    const yt = head.forward(x, { training: true });
    expect(yt.shape).toEqual([2, 3]);
    expectError(() => head.forward(tf.zeros([2, 4, 4, 6])), /NTHWC map \[B, T, H, W, C\]/);
    tf.dispose([x, y, yt, manual, ...Object.values(sd)]);
    head.dispose();
  });

  it('moving-shapes clips are reproducible, cover every class, and only motion tells the classes apart', () => {
    const data = syntheticVideo({ frameSize: 16, numFrames: 4, seed: 2 });
    expect(data.numClasses).toBe(VIDEO_DIRECTIONS.length * 2);
    const a = data.render(5);
    const b = syntheticVideo({ frameSize: 16, numFrames: 4, seed: 2 }).render(5);
    expect(maxAbsDiff(a, b)).toBe(0);
    const labels = new Set(Array.from({ length: 64 }, (_, i) => data.label(i)));
    expect(labels.size).toBe(8);
    // consecutive frames differ (the shape moves)
    const n = 16 * 16 * 3;
    expect(maxAbsDiff(a.subarray(0, n), a.subarray(n, 2 * n))).toBeGreaterThan(0.2);
    const { clips, labels: l } = data.batch([0, 1, 2]);
    expect(clips.shape).toEqual([3, 4, 16, 16, 3]);
    expect(Array.from(l.dataSync())).toEqual([0, 1, 2].map((i) => data.label(i)));
    tf.dispose([clips, l]);
  });

  it('featuresOnly returns the chosen stages (negative indices) and no stage after the last', () => {
    const cfg = { embedDim: 8, depths: [1, 1, 1], numHeads: [1, 1, 2], windowSize: [2, 4, 4] as [number, number, number], patchNorm: true };
    const full = videoSwin({ ...cfg, featuresOnly: true });
    const some = videoSwin({ ...cfg, featuresOnly: true, outIndices: [0, -1] });
    const sd = full.stateDict();
    some.loadStateDict(sd);
    const x = tf.randomNormal([1, 4, 32, 32, 3], 0, 1, 'float32', 2);
    const all = full.forward(x) as tf.Tensor5D[];
    const two = some.forward(x) as tf.Tensor5D[];
    expect(all.map((t) => t.shape)).toEqual([
      [1, 2, 8, 8, 8],
      [1, 2, 4, 4, 16],
      [1, 2, 2, 2, 32],
    ]);
    expect(two.length).toBe(2);
    expect(maxAbsDiff(two[1].dataSync(), all[2].dataSync())).toBe(0);
    tf.dispose([x, ...all, ...two, ...Object.values(sd)]);
    full.dispose();
    some.dispose();
  });

  it('bad configs and inputs give clear errors', () => {
    expectError(() => videoSwin({ depths: [2, 2], numHeads: [1] }), /numHeads has 1 entries, expected one per stage \(2\)/);
    expectError(
      () => videoSwin({ windowSize: [2, 7] as unknown as [number, number, number] }),
      /windowSize must be three positive integers/,
    );
    expectError(() => videoSwin({ numClasses: 10 }), /no classifier; put videoClsHead after it/);
    expectError(() => bevtSwin({ depths: [1, 1, 1], numHeads: [1, 1, 1] }), /expected 4 stages/);
    const m = bevtSwin({ embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 1, 1], windowSize: [2, 2, 2], patchNorm: true });
    const img = tf.zeros([1, 48, 48, 3]);
    expectError(() => m.forwardImage(img), /divisible by the window 2 in every stage, got 3x3/);
    const clip = tf.zeros([1, 4, 64, 64, 3]);
    expectError(() => m.forward(clip, { mask: tf.zeros([3, 2, 4, 4]) }), /video mask has batch 3, the input 1/);
    expectError(() => m.forward(clip, { mask: tf.zeros([4, 4]) }), /video mask: expected \[B, T', h, w\]/);
    tf.dispose([img, clip]);
    m.dispose();
  });
});
