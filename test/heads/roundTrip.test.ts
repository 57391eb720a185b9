/**
 * A backbone + head state dict (keys `backbone.*`, `neck.*`, `adapters.*`, `head.*`, BatchNorm running
 * statistics included) written with writeSafetensors, read back and loaded into a freshly initialised
 * model reproduces the outputs exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attach, AttachedModel } from '../../src/tasks/attach.js';
import { fpn } from '../../src/heads/fpn.js';
import { pixelCrossEntropy } from '../../src/heads/pixelCrossEntropy.js';
import { segmentationHead } from '../../src/heads/segmentationHead.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { manualSeed } from '../../src/layers/init.js';
import { convnextV2 } from '../../src/models/convnextV2/index.js';
import { swin } from '../../src/models/swin/index.js';
import { vitDet } from '../../src/models/vitDet/index.js';
import { stageAdapters } from '../../src/transfer/adapter.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

const CASES: { name: string; build: () => AttachedModel; prefixes: string[] }[] = [
  {
    name: 'swin + uperNet',
    build: () =>
      attach(
        swin({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 }),
        uperNet({ inChannels: [8, 16, 32, 64], channels: 8, numClasses: 3 }),
      ),
    prefixes: ['backbone.', 'head.'],
  },
  {
    name: 'vitDet + simple feature pyramid + FPN',
    build: () =>
      attach(
        vitDet({
          imgSize: 32,
          patchSize: 16,
          embedDim: 16,
          depth: 2,
          numHeads: 2,
          windowSize: 2,
          globalAttnIndexes: [1],
          useRelPos: true,
          neckChans: 8,
          numClasses: 0,
        }),
        fpn({ inChannels: [8, 8, 8, 8, 8], outChans: 8, numOuts: 6, addExtraConvs: 'on_output' }),
        { neck: simpleFeaturePyramid({ inChans: 16, outChans: 8, topBlock: true }) },
      ),
    prefixes: ['backbone.', 'neck.', 'head.'],
  },
  {
    name: 'convnextV2 + adapters + segmentation head',
    build: () => {
      const b = convnextV2({ dims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numClasses: 0 });
      return attach(b, segmentationHead({ inChannels: [8, 8, 16, 16], numClasses: 3 }), { adapters: stageAdapters(b) });
    },
    prefixes: ['backbone.', 'adapters.', 'head.'],
  },
];

const outputs = (m: AttachedModel, x: tf.Tensor) => {
  const y = m.forward(x);
  const list = Array.isArray(y) ? y : [y];
  const v = list.map((t) => Float32Array.from(t.dataSync() as Float32Array));
  tf.dispose(list);
  return v;
};

for (const backend of BACKENDS) {
  describe(`attached model state dict round trip through safetensors (${backend})`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const c of CASES) {
      it(`${c.name}: outputs reproduced exactly`, () => {
        manualSeed(11);
        const a = c.build();
        const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 7);
        // two training-mode forwards move the BatchNorm running statistics off their defaults
        for (let i = 0; i < 2; i++) tf.dispose(a.forward(x, { training: true }));
        const sd = a.stateDict();
        const keys = Object.keys(sd);
        for (const p of c.prefixes)
          expect(
            keys.some((k) => k.startsWith(p)),
            p,
          ).toBe(true);
        expect(keys.every((k) => c.prefixes.some((p) => k.startsWith(p)))).toBe(true);
        const bbKeys = Object.keys(a.backbone.stateDict()).map((k) => `backbone.${k}`);
        expect(keys.filter((k) => k.startsWith('backbone.')).sort()).toEqual(bbKeys.sort());
        const bytes = writeSafetensors(sd);
        const back = readSafetensors(bytes);
        manualSeed(12);
        const b = c.build();
        const pre = outputs(b, x);
        const want = outputs(a, x);
        expect(pre.some((v, i) => v.some((e, j) => e !== want[i][j]))).toBe(true); // a fresh model differs
        const res = b.loadStateDict(back);
        expect(res.loaded.length).toBe(keys.length);
        const got = outputs(b, x);
        got.forEach((v, i) => expect(Buffer.compare(Buffer.from(v.buffer), Buffer.from(want[i].buffer)), `output ${i}`).toBe(0));
        // a loss on it is identical too (segmentation heads)
        if (b.head.segmentation) {
          const y = tf.zeros([2, 32, 32], 'int32');
          const la = tf.tidy(() => pixelCrossEntropy(a.forward(x) as tf.Tensor, y).dataSync()[0]);
          const lb = tf.tidy(() => pixelCrossEntropy(b.forward(x) as tf.Tensor, y).dataSync()[0]);
          expect(lb).toBe(la);
          y.dispose();
        }
        tf.dispose([x, ...Object.values(sd), ...Object.values(back)]);
        a.dispose();
        b.dispose();
      });
    }
  });
}
