import * as tf from '@tensorflow/tfjs';
import { fusedLayerNorm } from '../../src/backends/fusedOps.js';
import { kernelModuleFor, MIN_WORK_PER_THREAD, setMinWorkPerThread } from '../../src/backends/kernelModule.js';
import { BenchSuite, median } from '../harness.js';

/**
 * Where the thread pool leaves kernels on one thread, and whether splitting them would pay: with 2+
 * threads (`npm run bench -- --threads 2 --only threads`), each op below at the shapes of
 * swinv2_tiny_window8_256 (256 px) and vit_small_patch16_224, batch 1, is timed with the default split
 * threshold (`threadsFor`: `MIN_WORK_PER_THREAD`, 2^16 work units per thread) and with splitting forced (threshold 1),
 * alternating, 7 samples of 40 calls each, medians by wall time (threads only show in wall time). The
 * 1024^3 matmul on all threads against one thread, in the same run, says how quiet the machine was:
 * a quiet 2-core machine gives ~1.9x.
 */

interface Case {
  name: string;
  make: () => tf.Tensor[];
  op: (t: tf.Tensor[]) => tf.Tensor;
  /** Work units as the kernel's wrapper counts them (to say whether the default splits it). */
  work: (t: tf.Tensor[]) => number;
}

const n = (t: tf.Tensor) => t.size;

const CASES: Case[] = [
  {
    name: 'LayerNorm swinv2 stage 1 [4096, 96]',
    make: () => [tf.randomNormal([4096, 96]), tf.ones([96]), tf.zeros([96])],
    op: ([x, w, b]) => fusedLayerNorm(x, w, b, 1e-5)!,
    work: ([x]) => n(x) * 4,
  },
  {
    name: 'LayerNorm swinv2 stage 2 [1024, 192]',
    make: () => [tf.randomNormal([1024, 192]), tf.ones([192]), tf.zeros([192])],
    op: ([x, w, b]) => fusedLayerNorm(x, w, b, 1e-5)!,
    work: ([x]) => n(x) * 4,
  },
  {
    name: 'LayerNorm vit_small [197, 384]',
    make: () => [tf.randomNormal([197, 384]), tf.ones([384]), tf.zeros([384])],
    op: ([x, w, b]) => fusedLayerNorm(x, w, b, 1e-5)!,
    work: ([x]) => n(x) * 4,
  },
  {
    name: 'softmax swinv2 stage 3 [48, 64, 64]',
    make: () => [tf.randomNormal([48, 64, 64])],
    op: ([x]) => tf.softmax(x),
    work: ([x]) => n(x) * 8,
  },
  {
    name: 'softmax vit_small [6, 197, 197]',
    make: () => [tf.randomNormal([6, 197, 197])],
    op: ([x]) => tf.softmax(x),
    work: ([x]) => n(x) * 8,
  },
  {
    name: 'window partition transpose swinv2 stage 1 [8, 8, 8, 8, 96]',
    make: () => [tf.randomNormal([8, 8, 8, 8, 96])],
    op: ([x]) => tf.transpose(x, [0, 2, 1, 3, 4]),
    work: ([x]) => n(x) * 4,
  },
  {
    name: 'window partition transpose swinv2 stage 2 [4, 8, 4, 8, 192]',
    make: () => [tf.randomNormal([4, 8, 4, 8, 192])],
    op: ([x]) => tf.transpose(x, [0, 2, 1, 3, 4]),
    work: ([x]) => n(x) * 4,
  },
  {
    name: 'residual add swinv2 stage 2 [1024, 192]',
    make: () => [tf.randomNormal([1024, 192]), tf.randomNormal([1024, 192])],
    op: ([a, b]) => tf.add(a, b),
    work: ([a]) => n(a) * 8,
  },
];

/** Median wall seconds per call of `fn` under each threshold, alternating. */
function compare(fn: () => void, thresholds: number[], samples = 7, calls = 40): number[] {
  const ts: number[][] = thresholds.map(() => []);
  for (const th of thresholds) {
    setMinWorkPerThread(th);
    for (let i = 0; i < 5; i++) fn();
  }
  for (let s = 0; s < samples; s++) {
    const order = s % 2 ? [...thresholds.keys()].reverse() : [...thresholds.keys()];
    for (const k of order) {
      setMinWorkPerThread(thresholds[k]);
      const t0 = performance.now();
      for (let c = 0; c < calls; c++) fn();
      ts[k].push((performance.now() - t0) / 1000 / calls);
    }
  }
  setMinWorkPerThread(MIN_WORK_PER_THREAD);
  return ts.map(median);
}

const suite: BenchSuite = {
  name: 'threads',
  async run(ctx) {
    const mod = ctx.backend === 'wasm' ? kernelModuleFor(tf.backend()) : null;
    if (!mod || mod.threads < 2) {
      console.log('threads: skipped (needs the wasm backend with 2+ threads: --threads 2)');
      return;
    }
    try {
      const a = tf.randomNormal([1024, 1024]);
      const b = tf.randomNormal([1024, 1024]);
      const [all, one] = compare(
        () => {
          const c = tf.matMul(a, b);
          c.dataSync();
          c.dispose();
        },
        [MIN_WORK_PER_THREAD, Number.MAX_SAFE_INTEGER],
        5,
        1,
      );
      tf.dispose([a, b]);
      console.log(
        `threads | 1024^3 matmul, ${mod.threads} threads / 1 thread: ${(one / all).toFixed(2)}x (the machine's quietness; ${ctx.config})`,
      );
      console.log('threads | op | work units | default threads | forced split / default (wall) | default µs | forced µs');
      for (const c of CASES) {
        const inputs = c.make();
        // wasm kernels run synchronously: no read-back needed (it would add the same copy to both)
        const fn = () => c.op(inputs).dispose();
        const [def, forced] = compare(fn, [MIN_WORK_PER_THREAD, 1]);
        const work = c.work(inputs);
        const threads = Math.max(1, Math.min(mod.threads, Math.floor(work / MIN_WORK_PER_THREAD)));
        console.log(
          `threads | ${c.name} | ${work} | ${threads} | ${(def / forced).toFixed(2)}x | ${(def * 1e6).toFixed(0)} | ${(forced * 1e6).toFixed(0)}`,
        );
        tf.dispose(inputs);
      }
    } finally {
      setMinWorkPerThread(MIN_WORK_PER_THREAD);
    }
  },
};

export default suite;
