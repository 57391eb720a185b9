import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ForwardOptions, Module, ModuleList, Parameter } from '../../src/layers/module.js';
import { cosineLr } from '../../src/train/lrSchedule.js';
import { DataSource, tensorDataset, Trainer } from '../../src/train/trainer.js';
import { defaultNoWeightDecay, noWeightDecayPatterns, noWeightDecayRule } from '../../src/train/weightDecay.js';
import { readSafetensorsWithMetadata } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

/** A 2-parameter toy: `w` (matrix, decayed) and `b` (vector, not decayed), loss = mean((x w + b - y)^2). */
class Toy extends Module {
  readonly w: Parameter;
  readonly b: Parameter;
  constructor() {
    super();
    this.w = this.addParameter(
      'w',
      tf.tensor2d([
        [0.5, -0.3],
        [0.2, 0.1],
        [-0.4, 0.6],
      ]),
    );
    this.b = this.addParameter('b', tf.tensor1d([0.1, -0.2]));
  }
  forward(x: tf.Tensor, _opts?: ForwardOptions): tf.Tensor {
    return tf.add(tf.matMul(x as tf.Tensor2D, this.w.value as tf.Tensor2D), this.b.value);
  }
}

/** Direct AdamW (PyTorch's algorithm) on a plain array, one step at a time, for comparison. */
class AdamWReference {
  m: number[];
  v: number[];
  t = 0;
  constructor(
    public p: number[],
    readonly wd: number,
    readonly b1 = 0.9,
    readonly b2 = 0.999,
    readonly eps = 1e-8,
  ) {
    this.m = p.map(() => 0);
    this.v = p.map(() => 0);
  }
  step(g: number[], lr: number): void {
    this.t += 1;
    for (let i = 0; i < this.p.length; i++) {
      this.p[i] *= 1 - lr * this.wd;
      this.m[i] = this.b1 * this.m[i] + (1 - this.b1) * g[i];
      this.v[i] = this.b2 * this.v[i] + (1 - this.b2) * g[i] * g[i];
      const mh = this.m[i] / (1 - this.b1 ** this.t);
      const vh = this.v[i] / (1 - this.b2 ** this.t);
      this.p[i] -= (lr * mh) / (Math.sqrt(vh) + this.eps);
    }
  }
}

for (const backend of BACKENDS) {
  describe(`training loop on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('cosine schedule with linear warm-up', () => {
      const o = { baseLr: 1e-3, totalSteps: 110, warmupSteps: 10, minLr: 1e-5 };
      expect(cosineLr(0, o)).toBe(0);
      expect(cosineLr(5, o)).toBeCloseTo(5e-4, 12);
      expect(cosineLr(10, o)).toBeCloseTo(1e-3, 12);
      expect(cosineLr(60, o)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) * 0.5, 12);
      expect(cosineLr(110, o)).toBeCloseTo(1e-5, 12);
      expect(cosineLr(35, o)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI * 0.25)), 12);
    });

    it('weight-decay rule: rank <= 1 and biases, plus the noWeightDecay() patterns of the model and its submodules', () => {
      expect(defaultNoWeightDecay('encoder.blocks.0.norm1.weight', [8])).toBe(true);
      expect(defaultNoWeightDecay('decoder.0.bias', [8])).toBe(true);
      expect(defaultNoWeightDecay('decoder.0.weight', [8, 8])).toBe(false);
      expect(defaultNoWeightDecay('encoder.blocks.0.norm1.weight', [8], [], false)).toBe(false);
      expect(defaultNoWeightDecay('encoder.mask_token', [1, 1, 8])).toBe(false);
      expect(defaultNoWeightDecay('encoder.mask_token', [1, 1, 8], ['encoder.mask_token'])).toBe(true);
      expect(
        defaultNoWeightDecay(
          'encoder.layers.0.blocks.1.attn.relative_position_bias_table',
          [9, 2],
          ['encoder.*relative_position_bias_table'],
        ),
      ).toBe(true);
      expect(defaultNoWeightDecay('encoder.pos_embed_x', [1, 4, 8], ['encoder.pos_embed'])).toBe(false);
      class Inner extends Module {
        constructor() {
          super();
          this.addParameter('pos_embed', tf.zeros([1, 4, 8]));
          this.addParameter('proj', tf.zeros([8, 8]));
        }
        noWeightDecay(): string[] {
          return ['pos_embed'];
        }
        forward(x: tf.Tensor) {
          return x;
        }
      }
      class Outer extends Module {
        constructor() {
          super();
          this.addModule('encoder', new Inner());
          this.addParameter('mask_token', tf.zeros([1, 1, 8]));
        }
        noWeightDecay(): string[] {
          return ['mask_token'];
        }
        forward(x: tf.Tensor) {
          return x;
        }
      }
      const m = new Outer();
      expect(noWeightDecayPatterns(m).sort()).toEqual(['encoder.pos_embed', 'mask_token']);
      const rule = noWeightDecayRule(m);
      expect(m.namedParameters().map(([n, p]) => [n, rule(n, p.variable.shape)])).toEqual([
        ['mask_token', true],
        ['encoder.pos_embed', true],
        ['encoder.proj', false],
      ]);
      m.dispose();
    });

    it('AdamW with weight decay (not on vectors), cosine lr and gradient clipping matches a direct computation', () => {
      const model = new Toy();
      const x = tf.tensor2d([
        [1, 2, 3],
        [0.5, -1, 2],
      ]);
      const y = tf.tensor2d([
        [1, 0],
        [0, 1],
      ]);
      const data: DataSource<tf.Tensor[]> = { size: 2, batch: () => [x.clone(), y.clone()] };
      const clip = 0.5;
      const refW = new AdamWReference(Array.from(model.w.value.dataSync()), 0.1);
      const refB = new AdamWReference(Array.from(model.b.value.dataSync()), 0); // vectors get no weight decay
      const trainer = new Trainer<tf.Tensor[]>({
        model,
        lr: 0.05,
        warmupSteps: 1,
        clipGradNorm: clip,
        optimizer: { weightDecay: 0.1 },
        loss: ([bx, by]) => tf.mean(tf.square(tf.sub(model.forward(bx), by))) as tf.Scalar,
      });
      const infos = trainer.fit(data, { epochs: 4, batchSize: 2 });
      const lrs = [0, 1, 2, 3].map((s) => cosineLr(s, { baseLr: 0.05, totalSteps: 4, warmupSteps: 1 }));
      expect(infos.map((i) => i.lr)).toEqual(lrs);
      expect(infos.some((i) => i.gradNorm > clip)).toBe(true); // clipping is exercised
      for (let t = 0; t < 4; t++) {
        // gradients of the same loss at the reference weights, clipped by their global norm
        const wt = tf.tensor2d(refW.p, [3, 2]);
        const bt = tf.tensor1d(refB.p);
        const g = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.mean(tf.square(tf.sub(tf.add(tf.matMul(x, a as tf.Tensor2D), c), y))))([
          wt,
          bt,
        ]);
        let g1 = Array.from(g[0].dataSync());
        let g2 = Array.from(g[1].dataSync());
        tf.dispose([wt, bt, ...g]);
        const norm = Math.sqrt([...g1, ...g2].reduce((s, v) => s + v * v, 0));
        expect(infos[t].gradNorm).toBeCloseTo(norm, 4);
        if (norm > clip) {
          g1 = g1.map((v) => (v * clip) / (norm + 1e-6));
          g2 = g2.map((v) => (v * clip) / (norm + 1e-6));
        }
        refW.step(g1, lrs[t]);
        refB.step(g2, lrs[t]);
      }
      const aw = model.w.value.dataSync();
      const ab = model.b.value.dataSync();
      refW.p.forEach((v, i) => expect(aw[i]).toBeCloseTo(v, 5));
      refB.p.forEach((v, i) => expect(ab[i]).toBeCloseTo(v, 5));
      expect(infos.every((i) => i.samplesPerSec > 0 && i.stepsPerSec > 0)).toBe(true);
      tf.dispose([x, y]);
      trainer.dispose();
      model.dispose();
    });

    it('layer-wise decay scales the first Adam step of each parameter by its factor', () => {
      class Two extends Module {
        constructor() {
          super();
          const blocks = this.addModule('blocks', new ModuleList());
          const inner = new (class extends Module {
            p: Parameter;
            constructor() {
              super();
              this.p = this.addParameter(
                'p',
                tf.tensor2d([
                  [1, 2],
                  [3, 4],
                ]),
              );
            }
            forward(x: tf.Tensor) {
              return x;
            }
          })();
          blocks.push(inner);
          this.addParameter(
            'head_w',
            tf.tensor2d([
              [1, -1],
              [2, 0.5],
            ]),
          );
        }
        forward(x: tf.Tensor) {
          return x;
        }
      }
      const model = new Two();
      const params = new Map(model.namedParameters());
      const before = Object.fromEntries([...params].map(([n, p]) => [n, Array.from(p.variable.dataSync())]));
      const trainer = new Trainer({
        model,
        lr: 0.01,
        constantLr: true,
        optimizer: { weightDecay: 0 },
        layerDecay: { decay: 0.5, matcher: { stem: '^patch_embed', blocks: [['^blocks\\.(\\d+)', null]] } },
        loss: () => tf.add(tf.sum(params.get('blocks.0.p')!.variable), tf.sum(params.get('head_w')!.variable)) as tf.Scalar,
      });
      const one = tf.zeros([1]);
      trainer.fit(tensorDataset(one), { epochs: 1, batchSize: 1 });
      // first Adam step moves every entry by lr * scale (m_hat / sqrt(v_hat) = sign(g) = 1)
      const d = (n: string) => Array.from(params.get(n)!.variable.dataSync()).map((v, i) => before[n][i] - v);
      for (const v of d('blocks.0.p')) expect(v).toBeCloseTo(0.01 * 0.5, 6);
      for (const v of d('head_w')) expect(v).toBeCloseTo(0.01, 6);
      one.dispose();
      trainer.dispose();
      model.dispose();
    });

    it('seeded data order: a permutation per epoch, reproducible, different across seeds', () => {
      const orders = (seed: number) => {
        const seen: number[][] = [];
        const model = new Toy();
        const data: DataSource<tf.Tensor> = { size: 6, batch: (idx) => (seen.push(idx), tf.zeros([1])) };
        const t = new Trainer({ model, lr: 1e-3, seed, loss: () => tf.sum(model.b.value) as tf.Scalar });
        t.fit(data, { epochs: 2, batchSize: 2 });
        t.dispose();
        model.dispose();
        return seen;
      };
      const a = orders(1);
      expect(a.length).toBe(6);
      expect(a.slice(0, 3).flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(a.slice(3).flat().sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(orders(1)).toEqual(a);
      expect(orders(2)).not.toEqual(a);
    });

    it('checkpoints: safetensors with model + optimizer state + step, restored exactly', () => {
      const model = new Toy();
      const x = tf.tensor2d([[1, 2, 3]]);
      const y = tf.tensor2d([[1, 0]]);
      const data: DataSource<tf.Tensor> = { size: 1, batch: () => tf.zeros([1]) };
      const saved: { bytes: Uint8Array; step: number }[] = [];
      const loss = () => tf.mean(tf.square(tf.sub(model.forward(x), y))) as tf.Scalar;
      const trainer = new Trainer({
        model,
        lr: 0.01,
        constantLr: true,
        loss,
        checkpointEvery: 2,
        onCheckpoint: (bytes, step) => saved.push({ bytes, step }),
      });
      trainer.fit(data, { epochs: 3, batchSize: 1 });
      expect(saved.map((s) => s.step)).toEqual([2, 3]);
      const { tensors, metadata } = readSafetensorsWithMetadata(saved[0].bytes);
      expect(Object.keys(tensors).sort()).toEqual([
        'b',
        'optimizer.exp_avg.b',
        'optimizer.exp_avg.w',
        'optimizer.exp_avg_sq.b',
        'optimizer.exp_avg_sq.w',
        'w',
      ]);
      expect(metadata.step).toBe('2');
      tf.dispose(Object.values(tensors));
      // restore step 2 into a fresh trainer and take one step: identical to the original third step
      const model2 = new Toy();
      const t2 = new Trainer({
        model: model2,
        lr: 0.01,
        constantLr: true,
        loss: () => tf.mean(tf.square(tf.sub(model2.forward(x), y))) as tf.Scalar,
      });
      t2.loadCheckpoint(saved[0].bytes);
      expect(t2.step).toBe(2);
      const before = tf.memory().numTensors;
      t2.fit(data, { epochs: 1, batchSize: 1 });
      expect(tf.memory().numTensors).toBe(before);
      const a = model.w.value.dataSync();
      const b = model2.w.value.dataSync();
      Array.from(a).forEach((v, i) => expect(b[i]).toBeCloseTo(v, 6));
      tf.dispose([x, y]);
      trainer.dispose();
      t2.dispose();
      model.dispose();
      model2.dispose();
    });

    it('micro-batches accumulate to the full-batch update (per-sample mean loss)', () => {
      const x = tf.tensor2d([
        [1, 2, 3],
        [0.5, -1, 2],
        [2, 0, -1],
        [-1, 1, 1],
      ]);
      const y = tf.tensor2d([
        [1, 0],
        [0, 1],
        [1, 1],
        [0, 0],
      ]);
      const run = (micro?: number) => {
        const model = new Toy();
        const t = new Trainer<tf.Tensor[]>({
          model,
          lr: 0.05,
          constantLr: true,
          microBatchSize: micro,
          loss: ([bx, by]) => tf.mean(tf.square(tf.sub(model.forward(bx), by))) as tf.Scalar,
        });
        const data: DataSource<tf.Tensor[]> = { size: 4, batch: (idx) => [tf.gather(x, idx), tf.gather(y, idx)] };
        const before = tf.memory().numTensors;
        const infos = t.fit(data, { epochs: 3, batchSize: 4 });
        const w = Array.from(model.w.value.dataSync());
        const leaked = tf.memory().numTensors - before;
        t.dispose();
        model.dispose();
        return { w, losses: infos.map((i) => i.loss), leaked };
      };
      const full = run();
      const micro = run(1);
      const two = run(3); // uneven split: 3 + 1
      micro.w.forEach((v, i) => expect(v).toBeCloseTo(full.w[i], 5));
      two.w.forEach((v, i) => expect(v).toBeCloseTo(full.w[i], 5));
      micro.losses.forEach((v, i) => expect(v).toBeCloseTo(full.losses[i], 5));
      // only the optimizer moments (2 per parameter) remain after training
      expect([full.leaked, micro.leaked, two.leaked]).toEqual([4, 4, 4]);
      tf.dispose([x, y]);
    });

    it('clear errors for bad options', () => {
      const model = new Toy();
      expect(() => new Trainer({ model, lr: 0, loss: () => tf.scalar(0) })).toThrow(/lr must be > 0/);
      expect(() => new Trainer({ model, lr: 1, params: ['nope'], loss: () => tf.scalar(0) })).toThrow(/'nope' is not a parameter/);
      expect(() => new Trainer({ model, lr: 1, layerDecay: 0.5, loss: () => tf.scalar(0) })).toThrow(
        /Toy has no groupMatcher\(coarse\) method/,
      );
      const t = new Trainer({ model, lr: 1, loss: () => tf.scalar(0) });
      expect(() => t.fit({ size: 1, batch: () => tf.zeros([1]) }, { epochs: 1, batchSize: 2 })).toThrow(/fewer than one batch of 2/);
      model.dispose();
    });
  });
}
