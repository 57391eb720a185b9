import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { livened as unitResPostNorm } from '../helpers/families.js';
import { pixelShuffle } from '../../src/pretrain/pixelShuffle.js';
import { simmim } from '../../src/pretrain/simmim.js';
import { SwinEncoder } from '../../src/pretrain/swinEncoder.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectGradientsEverywhere, firstLast, seeded, smoothImages, TINY_SWIN } from './tiny.js';

const FAMILIES = [
  { name: 'swin', build: swin },
  { name: 'swinv2', build: (c: Parameters<typeof swinV2>[0]) => unitResPostNorm(swinV2(c)) },
] as const;

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

for (const backend of BACKENDS) {
  describe(`SimMIM on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('pixelShuffle follows PyTorch channel order (c*r*r + i*r + j)', () => {
      const [b, h, w, c, r] = [2, 2, 3, 2, 3];
      const data = Float32Array.from({ length: b * h * w * c * r * r }, (_, i) => i);
      const y = pixelShuffle(tf.tensor4d(data, [b, h, w, c * r * r]), r);
      const v = y.arraySync() as number[][][][];
      for (let n = 0; n < b; n++)
        for (let hh = 0; hh < h; hh++)
          for (let ww = 0; ww < w; ww++)
            for (let i = 0; i < r; i++)
              for (let j = 0; j < r; j++)
                for (let cc = 0; cc < c; cc++)
                  expect(v[n][hh * r + i][ww * r + j][cc]).toBe(data[((n * h + hh) * w + ww) * c * r * r + cc * r * r + i * r + j]);
      y.dispose();
    });

    for (const fam of FAMILIES) {
      it(`${fam.name}: the encoder runner equals forwardFeatures, also at another resolution`, () => {
        const model = seeded(1, () => fam.build(TINY_SWIN));
        const enc = new SwinEncoder(model);
        const x = smoothImages(2, 32, 1);
        const ref = model.forwardFeatures(x);
        const before = tf.memory().numTensors;
        const out = enc.forward(x);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(maxAbsDiff(out, ref)).toBeLessThan(1e-5);
        // 64 px through the 32 px model = a model built for 64 px with the same weights
        const big = fam.build({ ...TINY_SWIN, imgSize: 64 });
        const sd = model.stateDict();
        big.loadStateDict(sd);
        const x64 = smoothImages(2, 64, 2);
        const a = enc.forward(x64);
        const b = big.forwardFeatures(x64);
        expect(a.shape).toEqual([2, 8, 8, 16]);
        expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
        expect(() => enc.forward(smoothImages(1, 48, 3))).toThrow(/stage 1 grid 6x6 \(image 48x48\) is not a multiple of its window 4x4/);
        tf.dispose([x, ref, out, x64, a, b, ...Object.values(sd)]);
        enc.dispose();
        big.dispose();
        model.dispose();
      });

      it(`${fam.name}: mask tokens replace exactly the masked patch embeddings`, () => {
        const model = seeded(2, () => simmim(fam.build(TINY_SWIN), { maskPatchSize: 8 }));
        const x = smoothImages(2, 32, 4);
        const x2 = smoothImages(2, 32, 5);
        const none = tf.zeros([2, 8, 8]);
        const all = tf.ones([2, 8, 8]);
        const before = tf.memory().numTensors;
        const z0 = model.forwardEncoder(x, { mask: none });
        expect(tf.memory().numTensors).toBe(before + 1);
        const ref = model.backbone.forwardFeatures(x);
        expect(maxAbsDiff(z0, ref)).toBeLessThan(1e-5);
        // everything masked: the output no longer depends on the image
        const za = model.forwardEncoder(x, { mask: all });
        const zb = model.forwardEncoder(x2, { mask: all });
        expect(maxAbsDiff(za, zb)).toBeLessThan(1e-6);
        const rec = model.forward(x, { mask: none });
        expect(rec.shape).toEqual([2, 32, 32, 3]);
        tf.dispose([x, x2, none, all, z0, ref, za, zb, rec]);
        model.dispose();
      });

      it(`${fam.name}: gradients reach every trainable variable, 30 steps lower the loss, no leak per step`, () => {
        const model = seeded(3, () => simmim(fam.build(TINY_SWIN), { maskPatchSize: 8, maskRatio: 0.6 }));
        const keys = model.namedParameters().map(([n]) => n);
        expect(keys).toContain('encoder.mask_token');
        expect(keys).toContain('decoder.0.weight');
        expect(keys).toContain('encoder.patch_embed.proj.weight');
        const data = smoothImages(8, 32, 6);
        const mask = model.generateMask(4, 32, 1);
        const batch = tf.tidy(() => data.slice([0, 0, 0, 0], [4, -1, -1, -1]));
        expectGradientsEverywhere(model, () => model.loss(batch, { mask, training: true }));
        tf.dispose([mask, batch]);

        const counts: number[] = [];
        const trainer = new Trainer({
          model,
          lr: 2e-3,
          warmupSteps: 3,
          seed: 7,
          loss: (b: tf.Tensor, ctx) => {
            const m = model.generateMask(b.shape[0], 32, ctx.rng);
            return model.loss(b, { mask: m, training: true });
          },
          onStep: () => counts.push(tf.memory().numTensors),
        });
        const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
        expect(infos.length).toBe(30);
        // no tensor leak per step (the optimizer moments are created on the first step)
        expect(new Set(counts.slice(1)).size).toBe(1);
        const { first, last } = firstLast(infos);
        console.log(
          `SimMIM ${fam.name} [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`,
        );
        // margin: the mean loss of the last 5 steps is at most 80% of the first 5 (measured ~0.68-0.70)
        expect(last).toBeLessThan(0.8 * first);
        tf.dispose(data);
        trainer.dispose();
        model.dispose();
      });
    }

    it('clear errors: classifier present, wrong mask grid, size not divisible by the stride', () => {
      expect(() => simmim(swin({ ...TINY_SWIN, numClasses: 10 }))).toThrow(/numClasses: 0/);
      const model = simmim(swinV2(TINY_SWIN));
      const x = tf.zeros([2, 32, 32, 3]);
      const bad = tf.zeros([2, 4, 4]);
      expect(() => model.forward(x, { mask: bad })).toThrow(
        /expected a mask \[2, 8, 8\] \(image 32x32 \/ patch 4\), got shape \[2, 4, 4\]/,
      );
      const x36 = tf.zeros([2, 36, 36, 3]);
      expect(() => model.forward(x36, { mask: tf.zeros([2, 9, 9]) })).toThrow(/36x36 is not divisible by the encoder stride 8/);
      expect(() => model.forward(tf.zeros([2, 32, 32, 1]), { mask: tf.zeros([2, 8, 8]) })).toThrow(/expected 3 input channels/);
      tf.dispose([x, bad, x36]);
      model.dispose();
    });
  });
}
