/**
 * `npm run demo [-- --quick] [--seeds N] [--pretrain-steps N] [--finetune-steps N] [--model NAME] [--out DIR] [--seed N]`
 *
 * The main job, end to end on the wasm backend with nothing downloaded: generate a seeded dataset
 * of shape images, pretrain a small SwinV2 with SimMIM, write a labelled PNG of input / masked /
 * prediction / prediction pasted into the masked blocks, probe the frozen features with a linear
 * classifier next to the same probe on the initial (random) features, fine-tune a classifier from
 * the pretrained weights next to the same model trained from scratch for the same steps, and save
 * the classifier as timm-named safetensors and as a TF.js model directory (which examples/browser
 * can load). With `--seeds N` it repeats the run for seeds 0..N-1 and prints mean and spread.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { registerFastKernels, unregisterFastKernels } from 'visbackbones';
import { DEMO_MODELS, DemoResult, FULL_STEPS, QUICK_STEPS, runDemo, summarizeSeeds } from './demo/pipeline.js';

const HELP = `usage: npm run demo -- [options]
  --quick                 ${QUICK_STEPS.pretrainSteps} SimMIM + ${QUICK_STEPS.finetuneSteps} fine-tuning steps (the demo test's setting)
  --seeds N               run seeds 0..N-1 (from --seed) and print mean and spread (default 1)
  --model NAME            ${Object.keys(DEMO_MODELS).join(' | ')} (default swinv2_demo)
  --pretrain-steps N      SimMIM steps (default ${FULL_STEPS.pretrainSteps})
  --finetune-steps N      fine-tuning steps, also used for the from-scratch model (default ${FULL_STEPS.finetuneSteps})
  --labels-per-class N    labelled training images per class (default 100)
  --batch N               batch size (default 32)
  --seed N                seed of the data, the masks and the initialisation (default 0)
  --out DIR               output folder (default out/demo; with --seeds, one subfolder per seed)
  --backend wasm|cpu      TF.js backend (default wasm)
  --no-fast-kernels       keep tfjs-wasm's own kernels (default: the library's SIMD kernels on wasm)`;

class UsageError extends Error {}

function int(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} ${v}: expected an integer >= ${min}`);
  return n;
}

async function main(): Promise<number> {
  const str = { type: 'string' } as const;
  let values;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        model: str,
        'pretrain-steps': str,
        'finetune-steps': str,
        'labels-per-class': str,
        batch: str,
        seed: str,
        seeds: str,
        out: str,
        backend: str,
        quick: { type: 'boolean' },
        help: { type: 'boolean' },
        'no-fast-kernels': { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    const model = values.model ?? 'swinv2_demo';
    if (!DEMO_MODELS[model]) throw new UsageError(`--model ${model}: expected one of ${Object.keys(DEMO_MODELS).join(', ')}`);
    const backend = values.backend ?? 'wasm';
    if (backend !== 'wasm' && backend !== 'cpu') throw new UsageError(`--backend ${backend}: expected wasm or cpu`);
    const seed0 = int(values.seed, 'seed', 0) ?? 0;
    const seeds = int(values.seeds, 'seeds', 1) ?? 1;
    const steps = values.quick ? QUICK_STEPS : FULL_STEPS;
    const opts = {
      model,
      pretrainSteps: int(values['pretrain-steps'], 'pretrain-steps', 1) ?? steps.pretrainSteps,
      finetuneSteps: int(values['finetune-steps'], 'finetune-steps', 1) ?? steps.finetuneSteps,
      labelsPerClass: int(values['labels-per-class'], 'labels-per-class', 1),
      batchSize: int(values.batch, 'batch', 1),
    };
    await tf.setBackend(backend);
    await tf.ready();
    const fast = backend === 'wasm' && !values['no-fast-kernels'];
    // the library registers its kernels on import: --no-fast-kernels puts tfjs-wasm's back
    if (fast) await registerFastKernels();
    else unregisterFastKernels();
    console.log(`visbackbones demo on the ${tf.getBackend()} backend${fast ? " (with the library's SIMD kernels)" : ''}`);
    const out = values.out ?? join('out', 'demo');
    const results: DemoResult[] = [];
    for (let s = seed0; s < seed0 + seeds; s++) {
      if (seeds > 1) console.log(`\n== seed ${s}`);
      results.push(await runDemo({ ...opts, seed: s, out: seeds > 1 ? join(out, `seed${s}`) : out }));
    }
    if (seeds > 1) console.log(`\n${summarizeSeeds(results)}\ntotal ${results.reduce((a, r) => a + r.seconds, 0).toFixed(0)} s`);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
