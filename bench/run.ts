/**
 * `npm run bench [-- --backend wasm|cpu] [--only NAME[,NAME]] [--batches 1,8] [--threads 1,2] [--kernels stock,fast] [--profile]` (default: 1 thread, our kernels):
 * runs every suite in bench/suites on one backend and prints images/s, model GFLOP/s, this run's
 * 1024^3 matmul GFLOP/s and their ratio. Throughput is reported as ratios measured in the same run.
 *
 * wasm only: `--threads` repeats everything for each thread count (Node: the threaded binary, see
 * src/backends/wasmThreads.ts), `--kernels` with tfjs-wasm's kernels (`stock`: ours unregistered)
 * and/or ours (`fast`, src/backends/fastKernels.ts: what the package registers on import); each pass
 * measures its own matmul rate. `--profile` prints a
 * per-op profile of the first call of every timed function (one forward pass for a forward suite).
 */
import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countFlops } from '../src/utils/flops.js';
import { registerFastKernels, unregisterFastKernels } from '../src/backends/fastKernels.js';
import { enableWasmThreads } from '../src/backends/wasmThreads.js';
import { BenchContext, BenchRow, BenchSuite, measureMatmul, setProfiling, time } from './harness.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const backend = flag(args, 'backend') ?? 'wasm';
  const only = flag(args, 'only');
  const batches = (flag(args, 'batches') ?? '1,8').split(',').map(Number);
  const threadCounts = backend === 'wasm' ? (flag(args, 'threads') ?? '1').split(',').map(Number) : [1];
  const kernelSets = backend === 'wasm' ? (flag(args, 'kernels') ?? 'fast').split(',') : ['stock'];
  setProfiling(args.includes('--profile'));
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'suites');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort();
  const suites: Array<{ file: string; suite: BenchSuite }> = [];
  for (const f of files) {
    const suite = (await import(pathToFileURL(join(dir, f)).href)).default as BenchSuite;
    if (only && !only.split(',').some((o) => suite.name.includes(o) || f.includes(o))) continue;
    suites.push({ file: f, suite });
  }
  for (const threads of threadCounts) {
    if (backend === 'wasm') await enableWasmThreads(threads);
    for (const kernels of kernelSets) {
      if (kernels === 'fast') await registerFastKernels();
      else unregisterFastKernels();
      await tf.setBackend(backend);
      await tf.ready();
      const config =
        backend === 'wasm'
          ? `wasm, ${threads} thread${threads > 1 ? 's' : ''}, ${kernels === 'fast' ? 'our kernels' : 'tfjs-wasm kernels'}`
          : backend;
      // the machines are shared and noisy: each suite's rows are compared with the matmul rate measured
      // right before and right after that suite (their mean), not with one figure from the start
      const mm = measureMatmul();
      console.log(`\n== ${config} | 1024^3 matmul: ${mm.toFixed(2)} GFLOP/s`);
      console.log('model | batch | img/s | GFLOP/img | model GFLOP/s | % of matmul | note');
      let rows: BenchRow[] = [];
      const ctx: BenchContext = {
        backend,
        matmulGflops: mm,
        batches,
        time,
        countFlops,
        args,
        config,
        report(r: BenchRow) {
          rows.push(r);
        },
      };
      let before = mm;
      for (const { suite } of suites) {
        rows = [];
        ctx.matmulGflops = before;
        await suite.run(ctx);
        const after = measureMatmul();
        const ref = (before + after) / 2;
        for (const r of rows) printRow(r, ref);
        console.log(`(matmul around this suite: ${before.toFixed(2)} before, ${after.toFixed(2)} after; ratios use the mean)`);
        before = after;
      }
    }
  }
}

/** One result line: img/s, model GFLOP/s and its share of the matmul rate `mm`. */
function printRow(r: BenchRow, mm: number): void {
  const rate = r.imgsPerSec ?? r.stepsPerSec ?? 0;
  const g = r.gflopPerImg ?? 0;
  const gs = g * (r.imgsPerSec ?? 0);
  const cells = [
    r.name,
    String(r.batch),
    r.imgsPerSec !== undefined ? r.imgsPerSec.toFixed(2) : r.stepsPerSec !== undefined ? `${rate.toFixed(3)} steps/s` : '-',
    g ? g.toFixed(3) : '-',
    gs ? gs.toFixed(2) : '-',
    gs ? `${((100 * gs) / (r.matmulGflops ?? mm)).toFixed(1)}%` : '-',
    r.note ?? '',
  ];
  console.log(cells.join(' | '));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
