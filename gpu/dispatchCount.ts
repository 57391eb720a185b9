/**
 * Dispatches per forward on tfjs's webgpu backend: one warm forwardLogits at batch 1 of each model
 * (random init, `createModel(name, {}, { init: false })`), counted by wrapping the backend's
 * `recordAndSubmit` (src/backends/webgpu/dispatchCounter.ts), with our WebGPU kernels off and on.
 *
 *     eval "$(bash gpu/lavapipe.sh)"; bash gpu/pack.sh     # once: software Vulkan, the `webgpu` package
 *     npx tsx gpu/dispatchCount.ts [--models=a,b] [--json=out.json] [--top=12] [--batch=1]
 *
 * Prints one line per model and mode (dispatches, tf kernels, top programs). Counts do not depend on
 * the adapter (lavapipe and a real GPU give the same), only on tfjs's flags and the shapes.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import '../src/index.js';
import { countDispatches } from '../src/backends/webgpu/dispatchCounter.js';
import { registerWebgpuKernels, unregisterWebgpuKernels } from '../src/backends/webgpu/kernels.js';
import type { Backbone } from '../src/models/backbone.js';
import { createModel } from '../src/models/registry.js';
import { BENCH_MODELS } from './benchModels.js';
import { setupDawnWebgpu } from './dawn.js';

const arg = (n: string) => process.argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1];
const models = arg('models')?.split(',') ?? BENCH_MODELS.map((m) => m.name);
const top = Number(arg('top') ?? 12);
const batch = Number(arg('batch') ?? 1);

export interface DispatchRow {
  model: string;
  batch: number;
  ourKernels: boolean;
  dispatches: number;
  tfKernels: number;
  byProgram: Record<string, number>;
}

async function main(): Promise<void> {
  const s = await setupDawnWebgpu();
  if (!s.ok) {
    console.error(`dispatchCount: ${s.reason}`);
    process.exit(3);
  }
  await tf.setBackend('webgpu');
  console.log(`webgpu on ${s.adapter}, tfjs ${tf.version.tfjs}`);
  const rows: DispatchRow[] = [];
  for (const name of models) {
    const size = BENCH_MODELS.find((m) => m.name === name)?.size ?? 224;
    const model = createModel(name, {}, { init: false }) as Backbone;
    const x = tf.randomNormal([batch, size, size, 3]);
    for (const ours of [false, true]) {
      if (ours) registerWebgpuKernels();
      else unregisterWebgpuKernels();
      const warm = model.forwardLogits(x);
      await warm.data();
      warm.dispose();
      const t0 = performance.now();
      const c = countDispatches(() => model.forwardLogits(x));
      await c.result.data();
      c.result.dispose();
      const prof = await tf.profile(async () => {
        const y = model.forwardLogits(x);
        await y.data();
        y.dispose();
      });
      rows.push({ model: name, batch, ourKernels: ours, dispatches: c.dispatches, tfKernels: prof.kernels.length, byProgram: c.byProgram });
      const row = rows[rows.length - 1];
      const progs = Object.entries(row.byProgram)
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      console.log(
        `${name} batch ${batch} ours ${ours ? 'on ' : 'off'}: ${row.dispatches} dispatches, ${row.tfKernels} tf kernels (${((performance.now() - t0) / 1000).toFixed(1)} s) | ${progs}`,
      );
    }
    x.dispose();
    model.dispose();
  }
  const json = arg('json');
  if (json) writeFileSync(json, JSON.stringify(rows, null, 1));
}

void main();
