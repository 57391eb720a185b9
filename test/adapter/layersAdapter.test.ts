import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { toLayersModel } from '../../src/adapter/layersAdapter.js';
import '../../src/models/swin/index.js';
import { swinV2 } from '../../src/models/swin/swinTransformer.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { loadLayersModelFromDir, saveLayersModelToDir } from '../../src/weights/tfjsFormat.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

for (const backend of BACKENDS) {
  describe(`Layers adapter on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('a fixture model saved as a TF.js LayersModel and loaded back gives identical outputs', async () => {
      const fx = loadFixture('swinv2_p4w4_64');
      const module = swinV2(fx.case.config);
      loadTimmWeights(module, fx.weightsBytes!);
      const x = nchwToNhwc(fx.io.input);
      const direct = module.forwardLogits(x);
      const model = toLayersModel(module, [64, 64, 3]);
      expect(model.weights.length).toBe(fx.case.weights.num_tensors);
      expect(model.countParams()).toBe(fx.case.weights.num_values);
      const lines: string[] = [];
      model.summary(120, undefined, (l) => lines.push(l));
      expect(lines.join('\n')).toMatch(new RegExp(`Total params: ${fx.case.weights.num_values}`));
      const viaModel = model.predict(x) as tf.Tensor;
      expect(Array.from(viaModel.dataSync())).toEqual(Array.from(direct.dataSync()));
      const dir = mkdtempSync(join(tmpdir(), 'vb-layers-'));
      try {
        await saveLayersModelToDir(model, dir);
        const loaded = await loadLayersModelFromDir(dir);
        const y = loaded.predict(x) as tf.Tensor;
        expect(Array.from(y.dataSync())).toEqual(Array.from(direct.dataSync()));
        tf.dispose(y);
        loaded.dispose();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      tf.dispose([x, direct, viaModel]);
      model.dispose();
      fx.dispose();
    });

    it('fit() trains the wrapped module through the LayersModel', async () => {
      const module = swinV2({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [1, 1], numHeads: [1, 2], windowSize: 4, numClasses: 2 });
      const model = toLayersModel(module, [32, 32, 3]);
      const x = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 5);
      const yl = tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2);
      // logits -> the LayersModel loss expects probabilities: train with a softmax on top
      const probs = tf.sequential({ layers: [tf.layers.activation({ activation: 'softmax', inputShape: [2] })] });
      const full = tf.model({ inputs: model.inputs, outputs: probs.apply(model.outputs[0]) as tf.SymbolicTensor });
      full.compile({ optimizer: tf.train.adam(1e-2), loss: 'categoricalCrossentropy' });
      const w0 = module.stateDict()['head.fc.weight'];
      const h = await full.fit(x, yl, { epochs: 8, batchSize: 4, verbose: 0 });
      const losses = h.history.loss as number[];
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      const w1 = module.stateDict()['head.fc.weight'];
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(w0, w1))).dataSync()[0])).toBeGreaterThan(0);
      tf.dispose([x, yl, w0, w1]);
      full.dispose();
    });
  });
}
