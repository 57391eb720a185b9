import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../src/backends/wasmKernels.js';
import { countFlops } from '../src/utils/flops.js';

/** What a bench suite gets: the backend, the matmul reference rate of this run, and timers. */
export interface BenchContext {
  backend: string;
  /** 1024^3 matmul GFLOP/s measured on this backend just before the running suite. */
  matmulGflops: number;
  /** Batch sizes to measure. */
  batches: number[];
  /** Time `fn` (which must dispose what it makes): returns seconds per call (median of `reps`). */
  time(fn: () => void, reps?: number, warmup?: number): number;
  countFlops: typeof countFlops;
  /** Print a result row. */
  report(row: BenchRow): void;
  /** Command-line flags. */
  args: string[];
  /** What this pass runs with (`wasm 2 threads, our kernels`): suites may print it. */
  config: string;
}

/** One measured line. */
export interface BenchRow {
  name: string;
  batch: number;
  imgsPerSec?: number;
  stepsPerSec?: number;
  gflopPerImg?: number;
  /** The row's own matmul rate (measured interleaved with it): its % of matmul uses this instead of the suite's. */
  matmulGflops?: number;
  note?: string;
}

/** A suite file in bench/suites exports `default` of this type. */
export interface BenchSuite {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}

/** The median of `xs` (the upper one of an even count), as every interleaved suite compares its samples. */
export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/**
 * CPU-seconds this process has used (user + system, all its threads): on the shared machines a
 * 1-thread figure that the other processes do not inflate, as wall time is.
 */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Median seconds per call of `fn`; with `--profile` (see {@link setProfiling}) the first call is profiled. */
export function time(fn: () => void, reps = 3, warmup = 1): number {
  if (profiling) printProfile(fn);
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

/** GFLOP/s of a 1024^3 float32 matmul on the active backend. */
export function measureMatmul(n = 1024): number {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const s = time(
    () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    },
    5,
    2,
  );
  tf.dispose([a, b]);
  return (2 * n ** 3) / s / 1e9;
}

let profiling = false;
let profileCount = 0;

/** Turn the per-op profile of every timed function on or off (`npm run bench -- --profile`). */
export function setProfiling(on: boolean): void {
  profiling = on;
}

/** One kernel call seen by {@link profileOnce}. */
export interface ProfiledKernel {
  name: string;
  ms: number;
  inputShapes: number[][];
  outputShapes: number[][];
}

type EngineInternals = {
  state: { profiling: boolean; activeProfile: { kernels: Array<{ name: string; inputShapes: number[][]; outputShapes: number[][] }> } };
  profiler: { backendTimer: { time(f: () => void): Promise<{ kernelMs: number }> } };
};

/**
 * Run `fn` once with tfjs's kernel profiler on and return every kernel call with its time, measured
 * synchronously (tf.profile is async and so cannot run inside a synchronous timer).
 */
export function profileOnce(fn: () => void): ProfiledKernel[] {
  const eng = tf.engine() as unknown as EngineInternals;
  const timer = eng.profiler.backendTimer;
  const own = Object.prototype.hasOwnProperty.call(timer, 'time');
  const original = timer.time;
  const times: number[] = [];
  timer.time = (f: () => void) => {
    const t0 = performance.now();
    f();
    const ms = performance.now() - t0;
    times.push(ms);
    return Promise.resolve({ kernelMs: ms });
  };
  eng.state.activeProfile.kernels = [];
  eng.state.profiling = true;
  try {
    fn();
  } finally {
    eng.state.profiling = false;
    if (own) timer.time = original;
    else delete (timer as { time?: unknown }).time;
  }
  return eng.state.activeProfile.kernels.map((k, i) => ({
    name: k.name,
    ms: times[i] ?? 0,
    inputShapes: k.inputShapes,
    outputShapes: k.outputShapes,
  }));
}

/**
 * Print where one call of `fn` spends its time, per kernel name and input ranks: total ms, share of
 * the kernel time, calls.
 */
export function printProfile(fn: () => void, top = 25, reps = 3): void {
  // the machines are shared: keep each kernel call's fastest time over a few identical runs
  const t0 = performance.now();
  const kernels = profileOnce(fn);
  const wall = performance.now() - t0;
  for (let r = 1; r < reps; r++) {
    const again = profileOnce(fn);
    if (again.length !== kernels.length) break;
    again.forEach((k, i) => (kernels[i].ms = Math.min(kernels[i].ms, k.ms)));
  }
  const rows = new Map<string, { ms: number; n: number }>();
  let total = 0;
  for (const k of kernels) {
    // ops with a custom gradient (tf.fused.matMul: 'fusedMatMul__op') are recorded around their kernels: count the kernels only
    if (k.name.endsWith('__op')) continue;
    const key = `${k.name} (${k.inputShapes.map((s) => (s ? s.length : 0)).join(',')}-D)`;
    const r = rows.get(key) ?? { ms: 0, n: 0 };
    r.ms += k.ms;
    r.n += 1;
    rows.set(key, r);
    total += k.ms;
  }
  profileCount++;
  console.log(
    `--- profile #${profileCount}: ${kernels.length} kernel calls, ${total.toFixed(1)} ms in kernels (fastest of ${reps} runs per call), ${wall.toFixed(1)} ms wall (first run)`,
  );
  for (const [key, r] of [...rows.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    console.log(
      `${r.ms.toFixed(1).padStart(9)} ms ${((100 * r.ms) / Math.max(total, 1e-9)).toFixed(1).padStart(5)}% ${String(r.n).padStart(5)}x  ${key}`,
    );
  }
}

/**
 * Measure a registered model's forward pass at `size` px for every batch of the run: images/s and
 * GFLOP/img (counted once by profiling). Shared by the forward-throughput suites.
 */
export async function benchForward(ctx: BenchContext, modelName: string, size: number): Promise<void> {
  const { createModel } = await import('../src/models/registry.js');
  const tf = await import('@tensorflow/tfjs');
  const model = createModel(modelName);
  const probe = tf.zeros([1, size, size, 3]);
  const flops = await ctx.countFlops(() => model.forwardLogits(probe));
  probe.dispose();
  for (const b of ctx.batches) {
    const x = tf.randomNormal([b, size, size, 3]);
    const s = ctx.time(
      () => {
        const y = model.forwardLogits(x);
        y.dataSync();
        y.dispose();
      },
      b > 4 ? 3 : 5,
      2,
    );
    ctx.report({ name: `${modelName} fwd`, batch: b, imgsPerSec: b / s, gflopPerImg: flops / 1e9 });
    x.dispose();
  }
  model.dispose();
}

/** A suite that runs {@link benchForward} for each `[model name, input size]`. */
export function forwardSuite(name: string, models: [string, number][]): BenchSuite {
  return {
    name,
    async run(ctx) {
      for (const [m, size] of models) await benchForward(ctx, m, size);
    },
  };
}
