import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySpan, wasmHeapBytes } from '../../src/backends/memoryMeter.js';
import { backendMemory, WasmBackend } from '../../src/backends/kernelModule.js';
import { ForwardOptions, Module, Parameter } from '../../src/layers/module.js';
import { tensorDataset, Trainer } from '../../src/train/trainer.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

/** Peak memory of a span (the trainer's per-step report) against allocations of known size. */

class Toy extends Module {
  readonly w: Parameter;
  constructor() {
    super();
    this.w = this.addParameter('w', tf.ones([4, 2]));
  }
  forward(x: tf.Tensor, _opts?: ForwardOptions): tf.Tensor {
    return tf.matMul(x as tf.Tensor2D, this.w.value as tf.Tensor2D);
  }
}

for (const backend of BACKENDS) {
  describe(`memory span on ${backend}`, () => {
    beforeAll(() => useBackend(backend));

    it('peak is the most bytes held at once, seen at every allocation; nested spans; nothing leaks', () => {
      const base = tf.memory().numBytes;
      const n0 = tf.memory().numTensors;
      const outer = memorySpan();
      const a = tf.zeros([1000]); // 4000 B
      const inner = memorySpan();
      const b = tf.zeros([2000]); // 8000 B: a + b held together
      b.dispose();
      const c = tf.zeros([500]);
      const mi = inner.stop();
      a.dispose();
      const d = tf.zeros([2500]); // 10000 B with c (2000 B): 12000
      tf.dispose([c, d]);
      const mo = outer.stop();
      expect(mi.peakTensorBytes).toBe(base + 12000);
      expect(mi.tensorBytes).toBe(base + 6000);
      expect(mo.peakTensorBytes).toBe(base + 12000);
      expect(mo.tensorBytes).toBe(base);
      // no views here: the distinct buffers are the same bytes
      expect(mi.peakDataBytes - mi.dataBytes).toBe(6000);
      expect(mo.peakDataBytes - mo.dataBytes).toBe(12000);
      // a later span starts from what is held now, not from an earlier peak
      const later = memorySpan();
      const e = tf.zeros([10]);
      e.dispose();
      expect(later.stop().peakTensorBytes).toBe(base + 40);
      // a span never stopped changes nothing for the next
      memorySpan();
      const s = memorySpan();
      tf.tidy(() => {
        tf.add(tf.zeros([100]), 1); // zeros 400 B, the scalar 4 B, the sum 400 B
      });
      expect(s.stop().peakTensorBytes).toBe(base + 804);
      expect(tf.memory().numTensors).toBe(n0);
    });

    it('a view (reshape) counts again in tf.memory() bytes, not in the distinct buffers', () => {
      const n0 = tf.memory().numTensors;
      const s = memorySpan();
      const held = s.stop();
      const span = memorySpan();
      const a = tf.zeros([50, 20]); // 4000 B
      const v = tf.reshape(a, [1000]); // shares a's buffer
      const c = tf.add(v, 1); // 4000 B (+ 4 B scalar)
      tf.dispose([a, v, c]);
      const m = span.stop();
      expect(m.peakTensorBytes - held.tensorBytes).toBe(12004);
      expect(m.peakDataBytes - held.dataBytes).toBe(8004);
      expect(m.dataBytes).toBe(held.dataBytes);
      expect(tf.memory().numTensors).toBe(n0);
    });

    it('wasm heap size (its high-water mark) on wasm, null elsewhere', () => {
      const h = wasmHeapBytes();
      if (backend === 'wasm') {
        expect(h).toBe(backendMemory(tf.backend() as unknown as WasmBackend).buffer.byteLength);
        expect(h).toBeGreaterThan(0);
      } else expect(h).toBeNull();
    });

    it('the trainer reports each step’s peak: what tfjs’s own profiler sees (tf.profile peakBytes), every allocation included', async () => {
      const model = new Toy();
      const x = tf.ones([8, 4]);
      const before = tf.memory().numTensors;
      const trainer = new Trainer({
        model,
        lr: 0.01,
        constantLr: true,
        loss: (batch: tf.Tensor) => {
          const big = tf.fill([10000], 1e-6); // 40 kB, alive until the step's tidy ends
          return tf.add(tf.mean(tf.square(model.forward(batch))), tf.sum(big)) as tf.Scalar;
        },
      });
      const held = tf.memory().numBytes;
      const infos = trainer.fit(tensorDataset(x), { epochs: 1, batchSize: 4 });
      const batch = x.slice(0, 4);
      let info = infos[0];
      const prof = await tf.profile(() => {
        info = trainer.trainStep(batch, { step: trainer.step, epoch: 1, totalSteps: 10, batchSize: 4 });
      });
      batch.dispose();
      // the profiler snapshots the byte count after each kernel; the span also sees allocations a kernel frees itself
      expect(info.memory.peakTensorBytes).toBeGreaterThanOrEqual(prof.peakBytes);
      expect(info.memory.peakTensorBytes).toBeLessThanOrEqual(prof.peakBytes + 40000);
      for (const i of [...infos, info]) {
        expect(i.memory.peakTensorBytes).toBeGreaterThanOrEqual(held + 40000);
        expect(i.memory.peakDataBytes).toBeGreaterThanOrEqual(40000);
        expect(i.memory.peakDataBytes).toBeLessThanOrEqual(i.memory.peakTensorBytes);
        expect(i.memory.wasmHeapBytes === null).toBe(backend !== 'wasm');
      }
      // Adam's moments exist from the first step on: the bytes held after each step stay the same
      expect(info.memory.tensorBytes).toBe(infos[1].memory.tensorBytes);
      console.log(`${backend}: step peak ${info.memory.peakTensorBytes} B, tf.profile peak ${prof.peakBytes} B, held before ${held} B`);
      trainer.optimizer.dispose();
      model.dispose();
      x.dispose();
      expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    });
  });
}
