import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { livened as unitResPostNorm } from '../helpers/families.js';
import { vit } from '../../src/models/vit/visionTransformer.js';
import { fastmim, progressiveResolution, resizeImages } from '../../src/pretrain/fastmim.js';
import { hogTargets } from '../../src/pretrain/hog.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectGradientsEverywhere, firstLast, seeded, smoothImages, TINY_SWIN, TINY_VIT } from './tiny.js';

const DECODER = { decoderDim: 16, decoderDepth: 1, decoderNumHeads: 2 };
const FAMILIES = [
  { name: 'swin', build: () => swin(TINY_SWIN) },
  { name: 'swinv2', build: () => unitResPostNorm(swinV2(TINY_SWIN)) },
  { name: 'vit', build: () => vit(TINY_VIT) },
] as const;

for (const backend of BACKENDS) {
  describe(`FastMIM on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('progressiveResolution follows --mim_pt_size / --mim_pt_step', () => {
      const s = { sizes: [96, 128, 160], starts: [0, 10, 20] };
      expect([0, 9, 10, 19, 20, 99].map((e) => progressiveResolution(e, s))).toEqual([96, 96, 128, 128, 160, 160]);
      expect(() => progressiveResolution(0, { sizes: [96, 128], starts: [5, 10] })).toThrow(/begin at 0/);
      const x = smoothImages(1, 32, 1);
      const y = resizeImages(x, 16);
      expect(y.shape).toEqual([1, 16, 16, 3]);
      tf.dispose([x, y]);
    });

    it('HOG targets per token are in (channel*nbins + bin, cell row, cell column) order', () => {
      // stride 8, HOG pool 4: 2x2 cells per token
      const model = fastmim(swin(TINY_SWIN), { ...DECODER, hogPool: 4 });
      expect(model.cellsPerToken).toBe(2);
      const x = smoothImages(2, 32, 2);
      const t = model.hogTarget(x);
      expect(t.shape).toEqual([2, 16, 27 * 4]);
      const hog = hogTargets(x, { pool: 4 }).arraySync() as number[][][][]; // [2, 8, 8, 27]
      const v = t.arraySync() as number[][][];
      for (let n = 0; n < 2; n++)
        for (let i = 0; i < 4; i++)
          for (let j = 0; j < 4; j++)
            for (let k = 0; k < 27; k++)
              for (let r = 0; r < 2; r++)
                for (let c = 0; c < 2; c++) expect(v[n][i * 4 + j][k * 4 + r * 2 + c]).toBe(hog[n][i * 2 + r][j * 2 + c][k]);
      tf.dispose([x, t]);
      model.dispose();
    });

    for (const fam of FAMILIES) {
      it(`${fam.name}: masked blocks are replaced in pixel space; gradients everywhere; 30 steps lower the loss; no leak`, () => {
        const model = seeded(21, () => fastmim(fam.build(), DECODER));
        const names = model.namedParameters().map(([n]) => n);
        for (const k of [
          'mask_token',
          'decoder_embed.weight',
          'decoder_blocks.0.attn.qkv.weight',
          'decoder_norm.weight',
          'decoder_pred.weight',
        ])
          expect(names).toContain(k);
        const x = smoothImages(2, 32, 3);
        const x2 = smoothImages(2, 32, 4);
        const all = tf.ones([2, 4, 4]);
        const before = tf.memory().numTensors;
        const a = model.forward(x, { mask: all });
        expect(tf.memory().numTensors).toBe(before + 1);
        const b = model.forward(x2, { mask: all });
        expect(a.shape).toEqual([2, 16, 27]);
        // everything masked: the prediction no longer depends on the image
        expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0])).toBeLessThan(1e-5);
        const mask = model.generateMask(2, 32, 1);
        expect(mask.shape).toEqual([2, 4, 4]);
        expectGradientsEverywhere(model, () => model.loss(x, { mask, training: true }));
        tf.dispose([x, x2, all, a, b, mask]);

        const data = smoothImages(8, 32, 5);
        const counts: number[] = [];
        const trainer = new Trainer({
          model,
          lr: 2e-3,
          warmupSteps: 3,
          seed: 1,
          loss: (bt: tf.Tensor, ctx) => {
            const m = model.generateMask(bt.shape[0], 32, ctx.rng);
            return model.loss(bt, { mask: m, training: true });
          },
          onStep: () => counts.push(tf.memory().numTensors),
        });
        const infos = trainer.fit(tensorDataset(data), { epochs: 30, batchSize: 2, maxSteps: 30 });
        expect(new Set(counts.slice(1)).size).toBe(1);
        const { first, last } = firstLast(infos);
        console.log(
          `FastMIM ${fam.name} [${backend}] loss first5 ${first.toFixed(4)} last5 ${last.toFixed(4)} ratio ${(last / first).toFixed(3)}`,
        );
        // margin: the mean loss of the last 5 steps is at most 80% of the first 5
        expect(last).toBeLessThan(0.8 * first);
        tf.dispose(data);
        trainer.dispose();
        model.dispose();
      });
    }

    it('swin: FastMIM-P trains one model across resolutions (32 px, then 64 px)', () => {
      const model = seeded(22, () => fastmim(swinV2(TINY_SWIN), DECODER));
      const data = smoothImages(4, 64, 6);
      const schedule = { sizes: [32, 64], starts: [0, 2] };
      const losses: number[] = [];
      const trainer = new Trainer({
        model,
        lr: 1e-3,
        seed: 2,
        loss: (bt: tf.Tensor, ctx) => {
          const size = progressiveResolution(ctx.step, schedule);
          const xs = resizeImages(bt as tf.Tensor4D, size);
          return model.loss(xs, { mask: model.generateMask(bt.shape[0], size, ctx.rng), training: true });
        },
        onStep: (i) => losses.push(i.loss),
      });
      trainer.fit(tensorDataset(data), { epochs: 2, batchSize: 2 });
      expect(losses.length).toBe(4);
      expect(losses.every(Number.isFinite)).toBe(true);
      tf.dispose(data);
      trainer.dispose();
      model.dispose();
    });

    it('clear errors: HOG pool vs stride, mask grid, image size, classifier', () => {
      expect(() => fastmim(swin(TINY_SWIN), { ...DECODER, hogPool: 16 })).toThrow(
        /encoder stride 8 is not divisible by the HOG pool size 16/,
      );
      expect(() => fastmim(vit({ ...TINY_VIT, numClasses: 3 }), DECODER)).toThrow(/numClasses: 0/);
      const model = fastmim(swin(TINY_SWIN), DECODER);
      const x = tf.zeros([2, 32, 32, 3]);
      const bad = tf.zeros([2, 8, 8]);
      expect(() => model.forward(x, { mask: bad })).toThrow(
        /expected a mask \[2, 4, 4\] \(image 32x32 \/ stride 8\), got shape \[2, 8, 8\]/,
      );
      const x36 = tf.zeros([2, 36, 36, 3]);
      expect(() => model.forward(x36, { mask: bad })).toThrow(/36x36 is not divisible by the encoder stride 8/);
      tf.dispose([x, bad, x36]);
      model.dispose();
    });
  });
}
