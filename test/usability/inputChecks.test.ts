import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { listFamilies } from '../../src/models/registry.js';
import type { Backbone } from '../../src/models/backbone.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';

/** A batch of the family's input rank (NHWC images, NTHWC clips). */
function batchShape(m: Backbone, b: number, s: number): number[] {
  try {
    m.checkInput(tf.zeros([1, 2, s, s, m.inChans]));
    return [b, 2, s, s, m.inChans];
  } catch {
    return [b, s, s, m.inChans];
  }
}

for (const backend of BACKENDS) {
  describe(`input checks of every backbone on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    for (const fam of listFamilies()) {
      it(`${fam.name}: integer / boolean images, plain arrays, empty batches and a disposed model are clear errors`, () => {
        const m = fam.tiny(32);
        const shape = tf.tidy(() => batchShape(m, 1, 32));
        const before = tf.memory().numTensors;
        const pixels = tf.zeros(shape, 'int32');
        const mask = tf.zeros(shape, 'bool');
        for (const x of [pixels, mask]) {
          expectError(
            () => m.forward(x),
            new RegExp(`expected a float32 image batch, got ${x.dtype}.*toFloat\\(\\)\\.div\\(255\\).*createTransform`),
          );
          expectError(() => m.forwardIntermediates(x), /expected a float32 image batch/);
        }
        expectError(
          () => m.forward(new Float32Array(3 * 32 * 32) as unknown as tf.Tensor),
          /expected the input as a tf\.Tensor.*Float32Array/,
        );
        expectError(() => m.forward([[[[0, 0, 0]]]] as unknown as tf.Tensor), /expected the input as a tf\.Tensor.*Array/);
        if (shape.length === 4) {
          const empty = tf.zeros([0, ...shape.slice(1)]);
          expectError(() => m.forward(empty), /expected a non-empty image batch, got shape \[0, 32, 32, 3\]/);
          expectError(() => m.forwardFeatures(empty), /non-empty/);
          empty.dispose();
        }
        tf.dispose([pixels, mask]);
        expect(tf.memory().numTensors).toBe(before);
        const x = tf.zeros(shape);
        m.dispose();
        expectError(() => m.forward(x), new RegExp(`this ${fam.name} model was disposed`));
        expectError(() => m.forwardIntermediates(x), /was disposed/);
        if (shape.length === 4) {
          expectError(() => m.forwardFeatures(x), /was disposed/);
          expectError(() => m.forwardLogits(x), /was disposed/);
        }
        x.dispose();
      });
    }
  });
}
