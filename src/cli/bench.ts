import * as tf from '@tensorflow/tfjs';
import { getModelEntry } from '../models/registry.js';
import { countFlops } from '../utils/flops.js';
import { ParsedArgs, UsageError, flagInt } from './args.js';
import { CliIO, imageSizeOf, modelOverrides, selectBackend } from './common.js';

/**
 * `visbackbones bench NAME [--backend wasm|cpu] [--threads N] [--batch N] [--reps N] [--img-size N]
 * [--config JSON|FILE]`: forward-pass throughput (median of `reps` timed runs after one warm-up)
 * in images/s and model GFLOP/s. `--threads N` runs tfjs-wasm and our kernels on N threads (wasm only).
 */
export async function benchCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length !== 1) throw new UsageError(`bench needs exactly one model name, got ${args.positional.length}`);
  const name = args.positional[0];
  const entry = getModelEntry(name);
  const overrides = modelOverrides(args);
  const batch = flagInt(args, 'batch', 1)!;
  const reps = flagInt(args, 'reps', 3)!;
  const threads = flagInt(args, 'threads', 1)!;
  const backend = await selectBackend(args, 'wasm', threads);
  const model = entry.create(overrides);
  try {
    const [h, w] = imageSizeOf({ ...entry.config, ...overrides });
    const x = tf.randomNormal([batch, h, w, model.inChans], 0, 1, 'float32', 1);
    const flops = await countFlops(() => model.forwardLogits(x));
    const run = () => {
      const y = model.forwardLogits(x);
      y.dataSync();
      y.dispose();
    };
    run(); // warm-up (kernel compilation, caches)
    const times: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      run();
      times.push((performance.now() - t0) / 1000);
    }
    x.dispose();
    times.sort((a, b) => a - b);
    const s = times[Math.floor(times.length / 2)];
    io.out(
      `${name} on ${backend}${threads > 1 ? ` (${threads} threads)` : ''}: batch ${batch} at ${h}x${w}, median of ${reps}: ${(s * 1000).toFixed(1)} ms/batch, ${(batch / s).toFixed(2)} img/s, ${(flops / batch / 1e9).toFixed(3)} GFLOP/img, ${(flops / s / 1e9).toFixed(2)} GFLOP/s`,
    );
  } finally {
    model.dispose();
  }
  return 0;
}
