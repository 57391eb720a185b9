import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../src/backends/wasmKernels.js';
import { countFlops } from '../src/utils/flops.js';

/** What a bench suite gets: the backend, the matmul reference rate of this run, and timers. */
export interface BenchContext {
  backend: string;
  /** 1024^3 matmul GFLOP/s measured at the start of this run on this backend. */
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
}

/** One measured line. */
export interface BenchRow {
  name: string;
  batch: number;
  imgsPerSec?: number;
  stepsPerSec?: number;
  gflopPerImg?: number;
  note?: string;
}

/** A suite file in bench/suites exports `default` of this type. */
export interface BenchSuite {
  name: string;
  run(ctx: BenchContext): Promise<void>;
}

/** Median seconds per call of `fn`. */
export function time(fn: () => void, reps = 3, warmup = 1): number {
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
  const s = time(() => {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }, 5, 2);
  tf.dispose([a, b]);
  return (2 * n ** 3) / s / 1e9;
}
