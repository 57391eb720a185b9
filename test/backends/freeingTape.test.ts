import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import '../../src/index.js';
import { setFreeingTape } from '../../src/backends/freeingTape.js';
import type { Backbone } from '../../src/models/backbone.js';
import { getFamily, listFamilies } from '../../src/models/registry.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { gradientPass, GradientPass, randomInput } from '../helpers/training.js';

/** One loss + gradient pass over the trainable variables of `model`, with the freeing tape on or off. */
function step(model: Backbone, x: tf.Tensor, freeing: boolean): GradientPass {
  const was = setFreeingTape(freeing);
  try {
    return gradientPass(model, x, (t) => model.forwardFeatures(t, { training: true }));
  } finally {
    setFreeingTape(was);
  }
}

for (const backend of BACKENDS) {
  describe(`the freeing backward pass (${backend})`, () => {
    beforeAll(() => useBackend(backend));
    afterEach(() => setFreeingTape(true));

    it('is what the package installs', () => {
      expect(setFreeingTape(true)).toBe(true);
    });

    for (const family of listFamilies()) {
      it(`${family.name}: bit-identical gradients to tfjs's tape, a lower peak, nothing leaks`, async () => {
        const model = family.tiny(
          64,
          family.name === 'semask_swin' ? { dropPathRate: 0, numSemBlocks: [0, 0, 0, 0] } : { dropPathRate: 0 },
        );
        const x = randomInput([2, 64, 64, model.inChans], 7);
        const stock = step(model, x, false);
        const freeing = step(model, x, true);
        console.log(
          `${backend} ${family.name}: peak ${stock.peakBytes} -> ${freeing.peakBytes} bytes (${((freeing.peakBytes / stock.peakBytes) * 100).toFixed(0)}%)`,
        );
        expect(Object.keys(freeing.grads)).toEqual(Object.keys(stock.grads));
        expect(Object.keys(freeing.grads).length).toBeGreaterThan(0);
        for (const k of Object.keys(stock.grads)) expect(freeing.grads[k], k).toEqual(stock.grads[k]);
        expect(freeing.loss).toBe(stock.loss);
        expect(freeing.peakBytes).toBeLessThan(stock.peakBytes);
        expect(stock.leaked).toBe(0);
        expect(freeing.leaked).toBe(0);
        x.dispose();
        model.dispose();
      });
    }

    it('a gradient object shared by several inputs, or passed through as the input gradient, survives', () => {
      // d/da and d/db are the same tensor (dy itself): freeing one entry must not free the other
      const pass = tf.customGrad((...args: unknown[]) => {
        const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
        save([]);
        return { value: tf.add(a, b), gradFunc: (dy: tf.Tensor) => [dy, dy] };
      });
      const a = tf.tensor1d([1, 2, 3]);
      const b = tf.tensor1d([4, 5, 6]);
      const before = tf.memory().numTensors;
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(pass(tf.mul(p, 2), q) as tf.Tensor, tf.tensor1d([1, 10, 100]))));
      const [ga, gb] = g([a, b]);
      expect(Array.from(ga.dataSync())).toEqual([2, 20, 200]);
      expect(Array.from(gb.dataSync())).toEqual([1, 10, 100]);
      tf.dispose([ga, gb]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([a, b]);
    });

    it("keeps the caller's dy, and gives the same results as tfjs's tape for a dy, an input used twice and a branch off the path", () => {
      const x = tf.tensor2d([
        [0.5, -1],
        [2, 3],
      ]);
      const dy = tf.tensor2d([
        [1, 2],
        [3, 4],
      ]);
      const f = (t: tf.Tensor) => {
        tf.sum(tf.exp(t)); // off the path to the output: its saved tensors must go too
        return tf.mul(tf.sin(t), tf.square(t));
      };
      const run = (freeing: boolean) => {
        const was = setFreeingTape(freeing);
        const before = tf.memory().numTensors;
        const { value, grads } = tf.engine().gradients(() => f(x), [x], dy);
        const out = [Array.from(value.dataSync()), Array.from(grads[0].dataSync())];
        tf.dispose([value, ...grads]);
        const leaked = tf.memory().numTensors - before;
        setFreeingTape(was);
        return { out, leaked };
      };
      const stock = run(false);
      const freeing = run(true);
      expect(freeing.out).toEqual(stock.out);
      expect(freeing.leaked).toBe(0);
      expect(dy.isDisposed).toBe(false);
      expect(Array.from(dy.dataSync())).toEqual([1, 2, 3, 4]);
      tf.dispose([x, dy]);
    });

    it("second-order gradients (a tape inside a tape) take tfjs's path and are right", () => {
      const x = tf.scalar(1.5);
      const before = tf.memory().numTensors;
      const d2 = tf.grad(tf.grad((t: tf.Tensor) => tf.pow(t, 3)));
      const g = d2(x);
      expect(g.dataSync()[0]).toBeCloseTo(6 * 1.5, 5);
      g.dispose();
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });

    it('errors as tfjs does: no path from x to y, a non-float dy', () => {
      const x = tf.scalar(2);
      const other = tf.scalar(3);
      expect(() => tf.grad(() => tf.mul(other, 2))(x)).toThrow(/Cannot compute gradient of y=f\(x\) with respect to x/);
      expect(() => tf.engine().gradients(() => tf.mul(x, 2), [x], tf.scalar(1, 'int32'))).toThrow(/dy must have 'float32' dtype/);
      tf.dispose([x, other]);
    });

    it('an optimizer step (minimize) trains the same as with tfjs tape', () => {
      const family = getFamily(listFamilies()[0].name);
      const x = randomInput([1, 64, 64, 3], 11);
      const init = family.tiny(64, { dropPathRate: 0 });
      const sd = init.stateDict();
      const run = (freeing: boolean): number[] => {
        const was = setFreeingTape(freeing);
        const model = family.tiny(64, { dropPathRate: 0 });
        model.loadStateDict(sd);
        const opt = tf.train.sgd(0.05);
        const losses: number[] = [];
        for (let i = 0; i < 2; i++) {
          const l = opt.minimize(() => tf.mean(tf.square(model.forwardFeatures(x, { training: true }))) as tf.Scalar, true)!;
          losses.push(l.dataSync()[0]);
          l.dispose();
        }
        opt.dispose();
        model.dispose();
        setFreeingTape(was);
        return losses;
      };
      expect(run(true)).toEqual(run(false));
      x.dispose();
      tf.dispose(Object.values(sd));
      init.dispose();
    });
  });
}
