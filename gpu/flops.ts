/**
 * Writes gpu/flops.json: the forward GFLOP per image of the models that gpu/webgpuCheck.ts benchmarks,
 * counted exactly as `npm run bench` counts them (`countFlops`: profiled matmul/conv kernels, batch 1)
 * on the cpu backend. The WebGPU check embeds this file so that the GPU machine spends no time on it.
 *
 *     npx tsx gpu/flops.ts
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/index.js';
import { createModel } from '../src/models/registry.js';
import { countFlops } from '../src/utils/flops.js';
import { BENCH_MODELS } from './benchModels.js';

await tf.setBackend('cpu');
const out: Record<string, { size: number; gflopPerImg: number }> = {};
for (const { name, size } of BENCH_MODELS) {
  const model = createModel(name);
  const probe = tf.zeros([1, size, size, 3]);
  const flops = await countFlops(() => model.forwardLogits(probe));
  probe.dispose();
  model.dispose();
  out[name] = { size, gflopPerImg: flops / 1e9 };
  console.log(name, size, (flops / 1e9).toFixed(4), 'GFLOP/img');
}
const file = join(dirname(fileURLToPath(import.meta.url)), 'flops.json');
writeFileSync(file, JSON.stringify({ counter: 'src/utils/flops.ts countFlops on the cpu backend, batch 1', models: out }, null, 2) + '\n');
console.log('wrote', file);
