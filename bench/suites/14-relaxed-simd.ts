import * as tf from '@tensorflow/tfjs';
import { kernelModuleFor, kernelSimd, relaxedSimdSupported, setKernelSimd } from '../../src/backends/kernelModule.js';
import { createModel, listModels } from '../../src/models/registry.js';
import '../../src/models/swin/index.js';
import { BenchSuite, cpuSeconds, median } from '../harness.js';

/**
 * Relaxed SIMD against SIMD128, in the same process and interleaved: the 1024^3 matmul
 * (`c = matMul(a, b); c.dataSync(); c.dispose()`) and a swinv2_tiny_window8_256 forward pass at batch 1
 * (two warm-up passes per build), each timed `--relaxed-reps` times (default 5 and 3) per build, the
 * builds alternating, medians compared. Times are CPU-seconds of this process (`process.cpuUsage()`,
 * one thread: the shared machines' wall time mostly measures the other processes), wall time beside. Skips with a reason where the runtime has no relaxed SIMD:
 * run it with `node --experimental-wasm-relaxed-simd --import tsx bench/run.ts --only relaxed` on
 * Node 20/21 (Node >= 22 has it by default). Leaves the kernel build on `auto`.
 */
const suite: BenchSuite = {
  name: 'relaxed SIMD',
  async run(ctx) {
    if (ctx.backend !== 'wasm') return;
    if (!relaxedSimdSupported()) {
      console.log('relaxed SIMD: skipped, this runtime has no WebAssembly relaxed SIMD (Node 20/21: --experimental-wasm-relaxed-simd)');
      return;
    }
    const i = ctx.args.indexOf('--relaxed-reps');
    const reps = i >= 0 ? Number(ctx.args[i + 1]) : 0;
    const builds = ['simd128', 'relaxed'] as const;
    const use = (b: (typeof builds)[number]) => {
      setKernelSimd(b);
      const got = kernelModuleFor(tf.backend())?.simd;
      if (got !== b) throw new Error(`relaxed SIMD suite: asked for the ${b} build, the backend bound ${String(got)}`);
    };
    const cpu = cpuSeconds;
    /** CPU-seconds (and wall seconds) per call of `fn` for each build, alternating builds `n` times. */
    const interleaved = (fn: () => void, n: number, warmup: number) => {
      const t: Record<string, number[]> = { simd128: [], relaxed: [] };
      const w: Record<string, number[]> = { simd128: [], relaxed: [] };
      for (const b of builds) {
        use(b);
        for (let w = 0; w < warmup; w++) fn();
      }
      for (let r = 0; r < n; r++) {
        for (const b of r % 2 ? [...builds].reverse() : builds) {
          use(b);
          const t0 = performance.now();
          const c0 = cpu();
          fn();
          t[b].push(cpu() - c0);
          w[b].push((performance.now() - t0) / 1000);
        }
      }
      return { simd128: median(t.simd128), relaxed: median(t.relaxed), wall: median(w.simd128) / median(w.relaxed) };
    };
    try {
      const n = 1024;
      const a = tf.randomNormal([n, n]);
      const b = tf.randomNormal([n, n]);
      const mm = interleaved(
        () => {
          const c = tf.matMul(a, b);
          c.dataSync();
          c.dispose();
        },
        reps || 5,
        2,
      );
      tf.dispose([a, b]);
      const gf = (s: number) => (2 * n ** 3) / s / 1e9;
      console.log(
        `relaxed SIMD | 1024^3 matmul GFLOP per CPU-second: simd128 ${gf(mm.simd128).toFixed(2)}, relaxed ${gf(mm.relaxed).toFixed(2)}, ` +
          `relaxed / simd128 = ${(mm.simd128 / mm.relaxed).toFixed(3)}x per CPU-second (${mm.wall.toFixed(3)}x by wall; medians, interleaved, ${ctx.config})`,
      );
      const name = 'swinv2_tiny_window8_256';
      if (listModels(name).includes(name)) {
        const model = createModel(name);
        const x = tf.randomNormal([1, 256, 256, 3]);
        const fwd = interleaved(
          () => {
            const y = model.forwardLogits(x);
            y.dataSync();
            y.dispose();
          },
          reps || 3,
          2,
        );
        const flops = await ctx.countFlops(() => model.forwardLogits(x));
        const imgs = (s: number) => 1 / s;
        console.log(
          `relaxed SIMD | ${name} forward img per CPU-second (batch 1): simd128 ${imgs(fwd.simd128).toFixed(3)}, relaxed ${imgs(fwd.relaxed).toFixed(3)}, ` +
            `relaxed / simd128 = ${(fwd.simd128 / fwd.relaxed).toFixed(3)}x per CPU-second (${fwd.wall.toFixed(3)}x by wall); model GFLOP per CPU-second relaxed ${(flops / fwd.relaxed / 1e9).toFixed(2)} = ` +
            `${((100 * flops) / fwd.relaxed / 1e9 / gf(mm.relaxed)).toFixed(1)}% of the relaxed matmul`,
        );
        x.dispose();
        model.dispose();
      }
    } finally {
      setKernelSimd('auto');
    }
    console.log(`relaxed SIMD | kernels back on ${kernelSimd()}`);
  },
};

export default suite;
