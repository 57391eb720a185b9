/**
 * `npm run demo [-- --pretrain-steps N] [--finetune-steps N] [--model NAME] [--out DIR] [--seed N]`
 *
 * The main job, end to end on the wasm backend with nothing downloaded: generate a seeded dataset
 * of shape images, pretrain a small SwinV2 with SimMIM, write a PNG of input / mask /
 * reconstruction, fine-tune a classifier from the pretrained weights and print its held-out
 * accuracy next to the same model trained from scratch for the same steps, and save the classifier
 * as timm-named safetensors and as a TF.js model directory (which examples/browser can load).
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../src/backends/wasmKernels.js';
import { registerFastKernels, unregisterFastKernels } from '../src/backends/fastKernels.js';
import { parseArgs, flagInt, flagString, UsageError } from '../src/cli/args.js';
import { DEMO_MODELS, runDemo } from './demo/pipeline.js';

const HELP = `usage: npm run demo -- [options]
  --model NAME            ${Object.keys(DEMO_MODELS).join(' | ')} (default swinv2_demo)
  --pretrain-steps N      SimMIM steps (default 1200)
  --finetune-steps N      fine-tuning steps, also used for the from-scratch model (default 300)
  --labels-per-class N    labelled training images per class (default 100)
  --batch N               batch size (default 32)
  --seed N                seed of the data, the masks and the initialisation (default 0)
  --out DIR               output folder (default out/demo)
  --backend wasm|cpu      TF.js backend (default wasm)
  --no-fast-kernels       keep tfjs-wasm's own kernels (default: the library's SIMD kernels on wasm)`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs(process.argv.slice(2), ['model', 'pretrain-steps', 'finetune-steps', 'labels-per-class', 'batch', 'seed', 'out', 'backend'], ['help', 'no-fast-kernels']);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${HELP}`);
    return 2;
  }
  if (args.flags.has('help')) {
    console.log(HELP);
    return 0;
  }
  try {
    const model = flagString(args, 'model') ?? 'swinv2_demo';
    if (!DEMO_MODELS[model]) throw new UsageError(`--model ${model}: expected one of ${Object.keys(DEMO_MODELS).join(', ')}`);
    const backend = flagString(args, 'backend') ?? 'wasm';
    if (backend !== 'wasm' && backend !== 'cpu') throw new UsageError(`--backend ${backend}: expected wasm or cpu`);
    const seedText = flagString(args, 'seed');
    const seed = seedText === undefined ? 0 : Number(seedText);
    if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed ${seedText}: expected a non-negative integer`);
    await tf.setBackend(backend);
    await tf.ready();
    const fast = backend === 'wasm' && !args.flags.has('no-fast-kernels');
    // the library registers its kernels on import: --no-fast-kernels puts tfjs-wasm's back
    if (fast) await registerFastKernels();
    else unregisterFastKernels();
    console.log(`visbackbones demo on the ${tf.getBackend()} backend${fast ? ' (with the library\'s SIMD kernels)' : ''}`);
    await runDemo({
      model,
      out: flagString(args, 'out'),
      pretrainSteps: flagInt(args, 'pretrain-steps'),
      finetuneSteps: flagInt(args, 'finetune-steps'),
      labelsPerClass: flagInt(args, 'labels-per-class'),
      batchSize: flagInt(args, 'batch'),
      seed,
    });
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
