import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import type { Module } from '../../src/layers/module.js';
import { getFamily, listFamilies } from '../../src/models/registry.js';
import { Trainer } from '../../src/train/trainer.js';
import { bevtSwin } from '../../src/models/videoSwin/bevtSwin.js';
import { videoSwin } from '../../src/models/videoSwin/swinTransformer3d.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { gradientPass, randomInput } from '../helpers/training.js';
import { setGradCheckpointingDeep } from '../../src/models/checkpoint.js';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { vit } from '../../src/models/vit/visionTransformer.js';
import { convnextV2 } from '../../src/models/convnextV2/convnext.js';
import { simmim } from '../../src/pretrain/simmim.js';
import { mixmim } from '../../src/pretrain/mixmim.js';
import { disposeMixMIMMask } from '../../src/pretrain/mixmimMask.js';
import { fcmae } from '../../src/pretrain/fcmae.js';
import { livened as unitResPostNorm } from '../helpers/families.js';
import { seeded, smoothImages, TINY_SWIN, TINY_VIT } from '../pretrain/tiny.js';

function maxDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let m = 0;
  for (const k of Object.keys(a)) for (let i = 0; i < a[k].length; i++) m = Math.max(m, Math.abs(a[k][i] - b[k][i]));
  return m;
}

async function compare(label: string, model: Module, x: tf.Tensor, run: (x: tf.Tensor) => tf.Tensor) {
  const plain = gradientPass(model, x, run);
  setGradCheckpointingDeep(model, true);
  const chk = gradientPass(model, x, run);
  setGradCheckpointingDeep(model, false);
  const diff = maxDiff(plain.grads, chk.grads);
  console.log(
    `${label}: peak ${plain.peakBytes} -> ${chk.peakBytes} bytes (${((1 - chk.peakBytes / plain.peakBytes) * 100).toFixed(1)}% less), max |grad diff| ${diff}`,
  );
  expect(Object.keys(chk.grads)).toEqual(Object.keys(plain.grads));
  expect(diff).toBe(0);
  expect(chk.leaked).toBe(0);
  expect(plain.leaked).toBe(0);
  expect(chk.peakBytes).toBeLessThan(plain.peakBytes);
}

for (const backend of BACKENDS) {
  describe(`gradient checkpointing (${backend})`, () => {
    beforeAll(() => useBackend(backend));

    for (const family of listFamilies()) {
      it(`${family.name}: the same gradients with less memory, nothing leaks`, async () => {
        // SeMask's semantic layers apply a fixed dropout (0.1) outside the blocks: without them both runs are deterministic
        const model = family.tiny(
          64,
          family.name === 'semask_swin' ? { dropPathRate: 0, numSemBlocks: [0, 0, 0, 0] } : { dropPathRate: 0 },
        );
        // the tiny plain ViTs' blocks (dim 16) hold less than their stem's patchified image at batch 2: at 8 the blocks weigh
        const batch = ['vit', 'vitdet', 'eva'].includes(family.name) ? 8 : 2;
        const x = randomInput([batch, 64, 64, model.inChans], 1);
        await compare(`${backend} ${family.name}`, model, x, (t) => model.forwardFeatures(t, { training: true }));
        x.dispose();
        model.dispose();
      });
    }

    it("the trainer's gradCheckpointing option: the same training steps as without it", () => {
      const family = getFamily(listFamilies()[0].name);
      const x = randomInput([2, 64, 64, 3], 3);
      const init = family.tiny(64, { dropPathRate: 0 });
      const sd = init.stateDict();
      const run = (gradCheckpointing: boolean): number[] => {
        const model = family.tiny(64, { dropPathRate: 0 });
        model.loadStateDict(sd);
        const trainer = new Trainer<tf.Tensor>({
          model,
          lr: 1e-3,
          constantLr: true,
          gradCheckpointing,
          loss: (b) => tf.mean(tf.square(model.forwardFeatures(b, { training: true }))) as tf.Scalar,
        });
        const losses = [0, 1, 2].map(() => trainer.trainStep(x, { step: 0, epoch: 0, totalSteps: 3, batchSize: 2 }).loss);
        trainer.dispose();
        model.dispose();
        return losses;
      };
      const plain = run(false);
      expect(run(true)).toEqual(plain);
      x.dispose();
      tf.dispose(Object.values(sd));
      init.dispose();
    });

    it('video swin: the same gradients with less memory, nothing leaks', async () => {
      const model = videoSwin({ embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: [2, 4, 4], patchNorm: true, dropPathRate: 0 });
      const x = randomInput([1, 4, 32, 32, 3], 2);
      await compare(`${backend} video_swin`, model, x, (t) => model.forwardFeatures(t, { training: true }));
      x.dispose();
      model.dispose();
    });

    it('BEVT, video and image streams: the same gradients with less memory, nothing leaks', async () => {
      const model = bevtSwin({
        embedDim: 8,
        depths: [1, 1, 2, 1],
        numHeads: [1, 1, 2, 2],
        windowSize: [2, 2, 2],
        patchNorm: true,
        dropPathRate: 0,
      });
      const v = randomInput([1, 4, 32, 32, 3], 4);
      await compare(`${backend} bevt video`, model, v, (t) => model.forward(t, { training: true }));
      const img = randomInput([1, 64, 64, 3], 5);
      await compare(`${backend} bevt image`, model, img, (t) => model.forwardImage(t, { training: true }));
      v.dispose();
      img.dispose();
      model.dispose();
    });

    // the pretraining wrappers run their encoders block by block: the blocks are checkpointed there too
    const PRETRAIN: Array<[string, () => { model: Module; x: tf.Tensor; run: (x: tf.Tensor) => tf.Tensor; done: () => void }]> = [
      [
        'SimMIM on Swin',
        () => {
          const model = simmim(swin({ ...TINY_SWIN, dropPathRate: 0 }));
          const mask = model.generateMask(4, 32, 3);
          return { model, x: smoothImages(4, 32, 1), run: (t) => model.loss(t, { mask, training: true }), done: () => mask.dispose() };
        },
      ],
      [
        'SimMIM on ViT',
        () => {
          const model = simmim(vit({ ...TINY_VIT, dropPathRate: 0 }), { maskPatchSize: 8 });
          const mask = model.generateMask(8, 32, 3);
          return { model, x: smoothImages(8, 32, 2), run: (t) => model.loss(t, { mask, training: true }), done: () => mask.dispose() };
        },
      ],
      [
        'MixMIM on SwinV2',
        () => {
          const model = mixmim(unitResPostNorm(swinV2({ ...TINY_SWIN, dropPathRate: 0 })), {
            decoderDim: 16,
            decoderDepth: 1,
            decoderNumHeads: 2,
          });
          const mask = model.generateMask(3);
          return {
            model,
            x: smoothImages(4, 32, 3),
            run: (t) => model.loss(t, { mask, training: true }),
            done: () => disposeMixMIMMask(mask),
          };
        },
      ],
      [
        'FCMAE on ConvNeXt V2',
        () => {
          const model = fcmae(convnextV2({ dims: [8, 16], depths: [2, 2], featuresOnly: true, dropPathRate: 0 }), {
            decoderDim: 16,
            decoderDepth: 1,
          });
          const mask = model.generateMask(4, 32, 3);
          return { model, x: smoothImages(4, 32, 4), run: (t) => model.loss(t, { mask, training: true }), done: () => mask.dispose() };
        },
      ],
    ];
    for (const [label, make] of PRETRAIN) {
      it(`${label}: the pretraining loss's gradients are the same with less memory, nothing leaks`, async () => {
        const { model, x, run, done } = seeded(5, make);
        await compare(`${backend} ${label}`, model, x, run);
        done();
        x.dispose();
        model.dispose();
      });
    }

    it("CSWin's useChk turns checkpointing on", () => {
      const family = getFamily('cswin');
      const m = family.create({ ...family.tinyConfig(64), useChk: true });
      const flags = m.namedModules().filter(([, c]) => 'gradCheckpointing' in c);
      expect(flags.length).toBeGreaterThan(0);
      for (const [, c] of flags) expect((c as unknown as { gradCheckpointing: boolean }).gradCheckpointing).toBe(true);
      m.dispose();
    });
  });
}
