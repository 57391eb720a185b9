import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { readImage } from '../../src/data/readImage.js';
import { createTransform } from '../../src/data/transforms.js';
import { VisBackbonesError } from '../../src/errors.js';
import { getFamily } from '../../src/models/registry.js';
import '../../src/models/vit/index.js';
import { classify } from '../../src/tasks/classify.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';

const IMG = join(FIXTURES_DIR, 'eval_transform_chelsea', 'chelsea.png');

for (const backend of BACKENDS) {
  describe(`classify (${backend})`, () => {
    beforeAll(() => useBackend(backend));
    it('top-k of softmax(logits) with names, from paths, tensors or a preprocessed batch', async () => {
      const model = getFamily('vit').tiny(32, { numClasses: 4 });
      const cfg = resolveDataConfig({}, { imgSize: 32 });
      const names = ['a', 'b', 'c', 'd'];
      const before = tf.memory().numTensors;
      const [fromPath] = await classify(model, IMG, { topk: 3, labels: names, dataConfig: cfg });
      const img = await readImage(IMG);
      const x = tf.tidy(() => createTransform(cfg)(img).expandDims(0)) as tf.Tensor4D;
      const [fromBatch] = await classify(model, x, { topk: 4, labels: names });
      const [fromTensor] = await classify(model, [img], { topk: 3, labels: names, dataConfig: cfg });
      const probs = tf.tidy(() => tf.softmax(model.forward(x) as tf.Tensor).dataSync());
      tf.dispose([img, x]);
      expect(tf.memory().numTensors).toBe(before);
      expect(fromPath).toEqual(fromTensor);
      expect(fromPath.length).toBe(3);
      expect(fromBatch.map((p) => p.index)).toEqual([0, 1, 2, 3].sort((i, j) => probs[j] - probs[i]));
      for (const p of fromBatch) {
        expect(p.label).toBe(names[p.index]);
        expect(p.probability).toBeCloseTo(probs[p.index], 6);
      }
      expect(fromBatch.reduce((s, p) => s + p.probability, 0)).toBeCloseTo(1, 5);
      const headless = getFamily('vit').tiny(32);
      await expect(classify(headless, IMG)).rejects.toBeInstanceOf(VisBackbonesError);
      model.dispose();
      headless.dispose();
    });
  });
}
