import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { softmaxCrossEntropyFromLogits, toLayersModel } from '../../src/adapter/layersAdapter.js';
import { manualSeed } from '../../src/layers/init.js';
import { getFamily } from '../../src/models/registry.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';

async function fitLosses(output: 'logits' | 'softmax'): Promise<{ losses: number[]; probsSumToOne: boolean }> {
  manualSeed(7);
  const m = getFamily('swin').tiny(32, { numClasses: 3 });
  const model = toLayersModel(m, [32, 32, 3], { output });
  model.compile({ optimizer: tf.train.adam(1e-2), loss: output === 'softmax' ? 'categoricalCrossentropy' : softmaxCrossEntropyFromLogits });
  const x = tf.randomNormal([6, 32, 32, 3], 0, 1, 'float32', 3);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32'), 3);
  const p = model.predict(x) as tf.Tensor;
  const sums = p.sum(-1).dataSync();
  const probsSumToOne = Array.from(sums).every((s) => Math.abs(s - 1) < 1e-5);
  const h = await model.fit(x, y, { epochs: 6, batchSize: 6, verbose: 0, shuffle: false });
  tf.dispose([x, y, p]);
  model.dispose();
  return { losses: h.history.loss as number[], probsSumToOne };
}

for (const backend of BACKENDS) {
  describe(`toLayersModel losses on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it("output 'softmax' + categoricalCrossentropy trains: probabilities out, loss falls", async () => {
      const { losses, probsSumToOne } = await fitLosses('softmax');
      expect(probsSumToOne).toBe(true);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    });

    it('logits + softmaxCrossEntropyFromLogits trains: the loss falls', async () => {
      const { losses, probsSumToOne } = await fitLosses('logits');
      expect(probsSumToOne).toBe(false);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
    });

    it('the loss from logits equals categorical cross-entropy of the softmax', () => {
      const logits = tf.tensor2d([
        [2, -1, 0.5],
        [0, 0, 3],
      ]);
      const y = tf.tensor2d([
        [1, 0, 0],
        [0, 0.5, 0.5],
      ]);
      const a = softmaxCrossEntropyFromLogits(y, logits).dataSync()[0];
      const b = tf.metrics.categoricalCrossentropy(y, tf.softmax(logits)).mean().dataSync()[0];
      expect(Math.abs(a - b)).toBeLessThan(1e-5);
      tf.dispose([logits, y]);
    });

    it("output 'softmax' on a model without a [B, classes] output is an error", () => {
      const m = getFamily('swin').tiny(32, { featuresOnly: true });
      expectError(() => toLayersModel(m, [32, 32, 3], { output: 'softmax' }), /needs a single \[B, classes\] output/);
      expectError(
        () => toLayersModel(m, [32, 32, 3], { output: 'probs' as 'softmax' }),
        /output must be 'logits' or 'softmax', got "probs"/,
      );
      m.dispose();
    });
  });
}
