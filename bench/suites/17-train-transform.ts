import * as tf from '@tensorflow/tfjs';
import { BatchTransformPath, setBatchTransformPath } from '../../src/data/batchTransform.js';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { createTransform } from '../../src/data/transforms.js';
import type { TrainTransformOptions } from '../../src/data/trainTransform.js';
import type { BenchSuite } from '../harness.js';

/**
 * The training transform (timm's `transforms_imagenet_train` to 224x224) per image and batched
 * (`npm run bench -- --only train_transform --batches 32`): each batch image a 375x500 uint8-valued
 * picture (ImageNet's typical size), per image = `createTransform(cfg, { isTraining: true })` on each
 * image then `tf.stack`, batched = `createTransform(cfg, { isTraining: true, batched: true })` on the
 * `[B, 375, 500, 3]` batch (the same outputs, bit for bit) on each of its paths (`js`: the batch read back
 * once and the JavaScript loops, what `auto` picks on cpu / wasm; `ops`: tensor ops, what it picks on GPU
 * backends). Rows: crop + flip + erasing without colour jitter (all tensor ops on the `ops` path), and
 * timm's defaults (colour jitter: Pillow's uint8 ops on the CPU on every path). `--tt-reps N`: timed calls
 * per row (default 3, after one warm-up).
 */
const suite: BenchSuite = {
  name: 'train_transform',
  async run(ctx) {
    const i = ctx.args.indexOf('--tt-reps');
    const reps = i >= 0 ? Number(ctx.args[i + 1]) : 3;
    const cfg = resolveDataConfig('vit_small_patch16_224.augreg_in21k_ft_in1k');
    const sets: [string, Partial<TrainTransformOptions>][] = [
      ['crop+flip+erase', { colorJitter: 0, reProb: 0.25 }],
      ['timm defaults (jitter 0.4)', {}],
    ];
    for (const batch of ctx.batches) {
      const images = tf.tidy(() => tf.randomUniform([batch, 375, 500, 3], 0, 255.99, 'float32', 1).floor()) as tf.Tensor4D;
      const list = tf.unstack(images) as tf.Tensor3D[];
      for (const [name, opts] of sets) {
        const perImage = createTransform(cfg, { isTraining: true, seed: 1, ...opts });
        const batched = createTransform(cfg, { isTraining: true, seed: 1, ...opts, batched: true });
        const tPer = ctx.time(() => {
          const ys = list.map((x) => perImage(x));
          const y = tf.stack(ys);
          tf.dispose(ys);
          y.dataSync();
          y.dispose();
        }, reps);
        const timeBatched = (p: BatchTransformPath) => {
          const previous = setBatchTransformPath(p);
          try {
            return ctx.time(() => {
              const y = batched(images);
              y.dataSync();
              y.dispose();
            }, reps);
          } finally {
            setBatchTransformPath(previous);
          }
        };
        const tJs = timeBatched('js');
        const tOps = timeBatched('ops');
        ctx.report({ name: `train transform per image, ${name}`, batch, imgsPerSec: batch / tPer });
        ctx.report({
          name: `train transform batched (js), ${name}`,
          batch,
          imgsPerSec: batch / tJs,
          note: `${(tPer / tJs).toFixed(2)}x per image`,
        });
        ctx.report({
          name: `train transform batched (ops), ${name}`,
          batch,
          imgsPerSec: batch / tOps,
          note: `${(tPer / tOps).toFixed(2)}x per image`,
        });
      }
      tf.dispose([images, ...list]);
    }
  },
};
export default suite;
