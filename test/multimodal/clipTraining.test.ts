import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipTextTransformer, clipVisionTransformer, coca, cocaLoss } from '../../src/models/clip/index.js';
import { manualSeed } from '../../src/layers/init.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { trainSteps } from '../helpers/training.js';

const TEXT = { contextLength: 8, vocabSize: 20, width: 16, heads: 2, layers: 2, outputDim: 12 };
const VISION = { imageSize: 16, patchSize: 8, width: 16, layers: 2, heads: 2, outputDim: 12 };
const COCA = {
  embedDim: 16,
  visionCfg: {
    imageSize: 16,
    patchSize: 8,
    width: 12,
    headWidth: 6,
    layers: 1,
    attentionalPool: true,
    attnPoolerQueries: 3,
    attnPoolerHeads: 2,
  },
  textCfg: { contextLength: 6, vocabSize: 20, width: 16, heads: 2, layers: 1, embedCls: true },
  multimodalCfg: { contextLength: 6, width: 16, heads: 2, layers: 1 },
};

function ids(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows.flat(), [rows.length, rows[0].length], 'int32');
}

for (const backend of BACKENDS) {
  describe(`CLIP / CoCa training steps on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('text tower (causal, QuickGELU, biased projection): gradients everywhere, loss falls, no leak', async () => {
      manualSeed(1); // the same initial weights whatever ran before
      const m = clipTextTransformer({ ...TEXT, actLayer: 'quick_gelu', projBias: true });
      const text = ids([
        [18, 3, 4, 19, 0, 0, 0, 0],
        [18, 5, 6, 7, 8, 9, 10, 19],
      ]);
      const w = tf.randomNormal([2, 12], 0, 1, 'float32', 1);
      const { losses } = await trainSteps(
        m,
        () => tf.sum(tf.mul(m.forward(text, { training: true }), w)) as tf.Scalar,
        tf.train.sgd(0.01),
        3,
      );
      expect(losses[2]).toBeLessThan(losses[0]);
      tf.dispose([text, w]);
      m.dispose();
    });

    it('text tower (bidirectional with padding mask, eos pooling): gradients everywhere, no leak', async () => {
      const m = clipTextTransformer({ ...TEXT, noCausalMask: true, usePadMask: true, poolType: 'eos', eosId: 19 });
      const text = ids([
        [18, 3, 4, 19, 0, 0, 0, 0],
        [18, 5, 6, 7, 8, 9, 10, 19],
      ]);
      const w = tf.randomNormal([2, 12], 0, 1, 'float32', 2);
      const { losses } = await trainSteps(
        m,
        () => tf.sum(tf.mul(m.forward(text, { training: true }), w)) as tf.Scalar,
        tf.train.sgd(0.05),
        3,
      );
      expect(losses[2]).toBeLessThan(losses[0]);
      tf.dispose([text, w]);
      m.dispose();
    });

    it('image tower (avg pooling, LayerScale, patch dropout in training): gradients everywhere, no leak', async () => {
      const m = clipVisionTransformer({ ...VISION, imageSize: 24, poolType: 'avg', lsInitValue: 0.5, patchDropout: 0.5 });
      const x = tf.randomNormal([2, 24, 24, 3], 0, 1, 'float32', 3);
      const w = tf.randomNormal([2, 12], 0, 1, 'float32', 4);
      const { losses } = await trainSteps(m, () => tf.sum(tf.mul(m.forward(x, { training: true }), w)) as tf.Scalar, tf.train.sgd(0.05), 3);
      expect(losses.every(Number.isFinite)).toBe(true);
      tf.dispose([x, w]);
      m.dispose();
    });

    it('CoCa with cocaLoss: gradients everywhere, loss falls, no leak', async () => {
      const m = coca(COCA);
      const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5);
      const text = ids([
        [18, 3, 4, 19, 0, 0],
        [18, 5, 6, 7, 8, 19],
      ]);
      const loss = () => {
        const out = m.forward({ image: x, text }, { training: true });
        const l = cocaLoss(out, text);
        return l.loss;
      };
      const { losses } = await trainSteps(m, () => tf.tidy(loss), tf.train.sgd(0.1), 4);
      expect(losses[3]).toBeLessThan(losses[0]);
      tf.dispose([x, text]);
      m.dispose();
    });
  });
}
