/**
 * `npm run bench [-- --backend wasm|cpu] [--only NAME] [--batches 1,8]`: runs every suite in
 * bench/suites on one backend and prints images/s, model GFLOP/s, this run's 1024^3 matmul GFLOP/s
 * and their ratio. Throughput is reported as ratios measured in the same run.
 */
import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countFlops } from '../src/utils/flops.js';
import { BenchContext, BenchRow, BenchSuite, measureMatmul, time } from './harness.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const backend = flag(args, 'backend') ?? 'wasm';
  const only = flag(args, 'only');
  const batches = (flag(args, 'batches') ?? '1,8').split(',').map(Number);
  await tf.setBackend(backend);
  await tf.ready();
  const mm = measureMatmul();
  console.log(`backend ${tf.getBackend()} | 1024^3 matmul: ${mm.toFixed(2)} GFLOP/s`);
  console.log('model | batch | img/s | GFLOP/img | model GFLOP/s | % of matmul | note');
  const ctx: BenchContext = {
    backend,
    matmulGflops: mm,
    batches,
    time,
    countFlops,
    args,
    report(r: BenchRow) {
      const rate = r.imgsPerSec ?? r.stepsPerSec ?? 0;
      const g = r.gflopPerImg ?? 0;
      const gs = g * (r.imgsPerSec ?? 0);
      const cells = [
        r.name,
        String(r.batch),
        r.imgsPerSec !== undefined ? r.imgsPerSec.toFixed(2) : `${rate.toFixed(3)} steps/s`,
        g ? g.toFixed(3) : '-',
        gs ? gs.toFixed(2) : '-',
        gs ? `${((100 * gs) / mm).toFixed(1)}%` : '-',
        r.note ?? '',
      ];
      console.log(cells.join(' | '));
    },
  };
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'suites');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();
  for (const f of files) {
    const suite = (await import(pathToFileURL(join(dir, f)).href)).default as BenchSuite;
    if (only && !suite.name.includes(only) && !f.includes(only)) continue;
    await suite.run(ctx);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
