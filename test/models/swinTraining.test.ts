import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { step, stepAndCheckGradients } from '../helpers/training.js';

const tiny = { imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: 4, numClasses: 3, dropPathRate: 0.1 };

for (const backend of BACKENDS) {
  describe(`Swin / SwinV2 training on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const [name, build] of [
      ['swin', swin],
      ['swinV2', swinV2],
    ] as const) {
      it(`${name}: no leak in forward and in an optimizer step; gradients reach every variable; loss falls`, () => {
        manualSeed(7);
        const model = build(tiny);
        const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 3);
        const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
        const lossFn = () => tf.losses.softmaxCrossEntropy(y, model.forwardLogits(x, { training: true })) as tf.Scalar;
        const opt = tf.train.adam(3e-3);

        const before = tf.memory().numTensors;
        tf.dispose(model.forward(x));
        expect(tf.memory().numTensors).toBe(before);

        const evalLoss = () => tf.tidy(() => tf.losses.softmaxCrossEntropy(y, model.forwardLogits(x)).dataSync()[0]);
        const initial = evalLoss();
        if (name === 'swinV2') {
          // timm's init: zero res-post-norms, so every block is the identity at first and the attention
          // and MLP weights get their first gradient only once a step has moved those norms
          for (const [k, p] of model.namedParameters()) {
            if (/^layers\.\d+\.blocks\.\d+\.norm[12]\./.test(k))
              expect(
                tf.tidy(() => tf.max(tf.abs(p.value)).dataSync()[0]),
                k,
              ).toBe(0);
          }
          const y0 = tf.randomNormal([2, 8, 8, 8], 0, 1, 'float32', 5);
          const y1 = model.layers.items[0].forward(y0);
          expect(Array.from(y1.dataSync())).toEqual(Array.from(y0.dataSync()));
          tf.dispose([y0, y1]);
          step(model, lossFn, opt);
        }
        stepAndCheckGradients(model, lossFn, opt);
        const afterFirst = tf.memory().numTensors; // the optimizer allocates its slots once
        step(model, lossFn, opt);
        expect(tf.memory().numTensors).toBe(afterFirst);
        for (let i = 0; i < 15; i++) step(model, lossFn, opt);
        const final = evalLoss();
        console.log(`${name} [${backend}] eval loss ${initial.toFixed(4)} -> ${final.toFixed(4)} after 17 steps`);
        expect(final, `eval loss ${initial} -> ${final}`).toBeLessThan(initial * 0.75);
        // drop path is active in training and inactive in eval
        const e1 = model.forwardLogits(x);
        const e2 = model.forwardLogits(x);
        expect(Array.from(e1.dataSync())).toEqual(Array.from(e2.dataSync()));
        tf.dispose([e1, e2, x, y]);
        opt.dispose();
        model.dispose();
      });
    }
  });
}
