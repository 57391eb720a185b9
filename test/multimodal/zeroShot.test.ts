import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clipTextTransformer, clipTokenizer, ClipTokenizer } from '../../src/models/clip/index.js';
import { l2Normalize } from '../../src/layers/attention.js';
import { zeroShotClassifier, zeroShotLogits } from '../../src/tasks/zeroShot.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { FIXTURES_DIR, maxAbsDiff } from '../helpers/fixtures.js';

let tok: ClipTokenizer;
beforeAll(() => {
  tok = clipTokenizer({ bpe: new Uint8Array(readFileSync(join(FIXTURES_DIR, 'clip_tokenizer_ctx77', 'bpe_simple_vocab_16e6.txt.gz'))) });
});

for (const backend of BACKENDS) {
  describe(`zero-shot classifier on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('averages the normalised prompt features per class and normalises again (open_clip)', () => {
      const text = clipTextTransformer({ contextLength: 16, width: 16, heads: 2, layers: 1, outputDim: 8 });
      const templates = ['a photo of a {}.', (c: string) => `a drawing of the ${c}`];
      const before = tf.memory().numTensors;
      const w = zeroShotClassifier(text, tok, ['cat', 'red square'], templates);
      expect(w.shape).toEqual([8, 2]);
      const ids = tok.tokenize(['a photo of a red square.', 'a drawing of the red square'], 16);
      const manual = tf.tidy(() => l2Normalize(tf.mean(l2Normalize(text.forward(ids)), 0)));
      const col = tf.tidy(() => tf.slice(w, [0, 1], [8, 1]).reshape([8]));
      expect(maxAbsDiff(col.dataSync(), manual.dataSync())).toBeLessThan(1e-6);
      const norms = tf.tidy(() => tf.sqrt(tf.sum(tf.square(w), 0)));
      expect(maxAbsDiff(norms.dataSync(), [1, 1])).toBeLessThan(1e-5);
      const img = tf.randomNormal([3, 8], 0, 1, 'float32', 1);
      const logits = zeroShotLogits(img, w);
      expect(logits.shape).toEqual([3, 2]);
      tf.dispose([ids, manual, col, norms, img, logits, w]);
      expect(tf.memory().numTensors).toBe(before);
      expectError(() => zeroShotClassifier(text, tok, [], templates), /at least one class name/);
      text.dispose();
    });
  });
}
