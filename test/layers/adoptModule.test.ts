import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { manualSeed, normal } from '../../src/layers/init.js';
import { Linear } from '../../src/layers/linear.js';
import { Module } from '../../src/layers/module.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

/** A model with a parameter, a persistent buffer and two children. */
class Inner extends Module {
  readonly proj: Linear;
  constructor() {
    super();
    this.addParameter('gamma', normal([3], 0.1));
    this.addBuffer('count', tf.tensor1d([2], 'int32'), { persistent: true, int64: true });
    this.addModule('backbone', new Linear(4, 3));
    this.proj = this.addModule('proj', new Linear(3, 2));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.proj.forward(x);
  }
}

/** A task holding an Inner whose keys stay unprefixed, plus a head of its own. */
class Outer extends Module {
  readonly inner: Inner;
  readonly head: Linear;
  constructor(inner = new Inner(), headName = 'head') {
    super();
    this.inner = this.adoptModule(inner);
    this.head = this.addModule(headName, new Linear(2, 1));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.head.forward(this.inner.forward(x));
  }
}

for (const backend of BACKENDS) {
  describe(`Module.adoptModule on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it("lists the adopted module's state as its own, in registration order, and round-trips strictly", () => {
      manualSeed(1);
      const before = tf.memory().numTensors;
      const m = new Outer();
      const keys = ['gamma', 'backbone.weight', 'backbone.bias', 'proj.weight', 'proj.bias', 'head.weight', 'head.bias'];
      expect(m.namedParameters().map(([n]) => n)).toEqual(keys);
      expect(m.namedBuffers().map(([n]) => n)).toEqual(['count']);
      expect(m.children().map(([n]) => n)).toEqual(['backbone', 'proj', 'head']);
      expect(m.namedModules().map(([n]) => n)).toEqual(['', 'backbone', 'proj', 'head']);
      expect(m.getSubmodule('proj')).toBe(m.inner.proj);
      expect(m.getSubmodule('head')).toBe(m.head);
      expect(() => m.getSubmodule('inner')).toThrow(/no submodule 'inner'/);
      expect(m.trainableVariables().length).toBe(7);
      const sd = m.stateDict();
      expect(Object.keys(sd)).toEqual([...keys, 'count']);
      const m2 = new Outer();
      m2.loadStateDict(sd);
      const x = tf.ones([2, 3]);
      const [y2, y1] = tf.tidy(() => [m2.forward(x).dataSync(), m.forward(x).dataSync()]);
      expect(Array.from(y2)).toEqual(Array.from(y1));
      tf.dispose([x, ...Object.values(sd)]);
      m.dispose();
      m2.dispose();
      expect(m.inner.isDisposed).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('a name the adopted module already uses, or a second adoption, is refused', () => {
      expect(() => new Outer(new Inner(), 'proj')).toThrow(VisBackbonesError);
      expect(() => new Outer(new Inner(), 'gamma')).toThrow(/duplicate or empty child name 'gamma'/);
      class Twice extends Module {
        constructor() {
          super();
          this.adoptModule(new Linear(2, 2));
          this.adoptModule(new Linear(2, 2));
        }
        forward(x: tf.Tensor): tf.Tensor {
          return x;
        }
      }
      expect(() => new Twice()).toThrow(/already adopted a module/);
      class Clash extends Module {
        constructor() {
          super();
          this.addParameter('weight', tf.zeros([1]));
          this.adoptModule(new Linear(2, 2));
        }
        forward(x: tf.Tensor): tf.Tensor {
          return x;
        }
      }
      expect(() => new Clash()).toThrow(/names taken: weight/);
    });
  });
}
