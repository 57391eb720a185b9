/**
 * `npm run demo:detection [-- --quick] [--detectors retinanet,maskrcnn] [--steps N] [--out DIR] [--seed N]`
 *
 * Detection end to end on the wasm backend with nothing downloaded: RetinaNet on a small PVT v2 + FPN
 * and Mask R-CNN on a small ViTDet (plain ViT + simple feature pyramid) trained on seeded synthetic
 * shape images, their COCO box AP on held-out images next to the same models at their initial weights,
 * a PNG of the predictions (boxes, masks) and the ground truth, and one detector folder per model that
 * `visbackbones detect DIR IMAGE...` reads.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { registerFastKernels } from 'visbackbones';
import { DemoDetector, DETECTION_FULL, DETECTION_QUICK, runDetectionDemo } from './detection/pipeline.js';

const HELP = `usage: npm run demo:detection -- [options]
  --quick                 ${DETECTION_QUICK.steps} steps per detector (default ${DETECTION_FULL.steps})
  --steps N               training steps per detector
  --detectors LIST        retinanet,maskrcnn (default both)
  --batch N               images per step (default 8)
  --test-images N         held-out images for the AP (default 100)
  --seed N                seed of data, initialisation and samplers (default 0)
  --out DIR               output folder (default out/detection)
  --backend wasm|cpu      TF.js backend (default wasm)`;

async function main(): Promise<number> {
  const str = { type: 'string' } as const;
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean' },
      help: { type: 'boolean' },
      steps: str,
      detectors: str,
      batch: str,
      'test-images': str,
      seed: str,
      out: str,
      backend: str,
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const int = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} ${v}: expected a non-negative integer`);
    return n;
  };
  const detectors = values.detectors?.split(',').map((s) => s.trim()) as DemoDetector[] | undefined;
  for (const d of detectors ?? [])
    if (d !== 'retinanet' && d !== 'maskrcnn') throw new Error(`--detectors: unknown '${d}' (expected retinanet, maskrcnn)`);
  const backend = values.backend ?? 'wasm';
  await tf.setBackend(backend);
  await tf.ready();
  if (backend === 'wasm') await registerFastKernels();
  const r = await runDetectionDemo({
    detectors,
    steps: int(values.steps, 'steps') ?? (values.quick ? DETECTION_QUICK.steps : undefined),
    batchSize: int(values.batch, 'batch'),
    testImages: int(values['test-images'], 'test-images'),
    seed: int(values.seed, 'seed'),
    out: values.out ?? 'out/detection',
  });
  console.log(`wrote ${r.png}; ${r.seconds.toFixed(0)} s in all`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
