import * as tf from '@tensorflow/tfjs';
import { VisBackbonesError } from '../errors.js';
import { DataConfig, resolveDataConfig } from '../data/dataConfig.js';
import { decodeImageFolder, imageFolder } from '../data/imageFolder.js';
import { normalizeU8 } from '../data/imageOps.js';
import { evalResizeCrop } from '../data/evalTransform.js';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag } from '../data/pretrainedCfgs.js';
import { DataRng } from '../data/rng.js';
import { createTransform } from '../data/transforms.js';
import { saveCheckpointDir } from '../hub/checkpointDir.js';
import { createPretrainedModel } from '../hub/createPretrained.js';
import type { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { Trainer } from '../train/trainer.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';
import { CliIO, modelOverrides, selectBackend } from './common.js';
import { splitImgSize } from './sizeOverride.js';

/** Flags of `finetune`. */
export const FINETUNE_FLAGS = {
  values: [
    'model',
    'data',
    'epochs',
    'img-size',
    'batch-size',
    'lr',
    'val-split',
    'out',
    'seed',
    'config',
    'backend',
    'cache-dir',
    'max-steps',
  ],
  switches: ['pretrained', 'strict', 'offline', 'no-progress'],
};

function flagNumber(args: ParsedArgs, name: string, def: number, ok: (v: number) => boolean, what: string): number {
  const v = flagString(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} ${v}: expected ${what}`);
  return n;
}

/**
 * `visbackbones finetune --model NAME[.TAG] --data DIR --out DIR [--epochs 10] [--img-size N] [--batch-size 16]
 * [--lr 5e-4] [--val-split 0.1] [--pretrained] [--strict] [--seed 0] [--config JSON|FILE] [--backend wasm|cpu]`:
 * fine-tune a classifier on `<data>/<class>/<image>` (timm's training transform, label smoothing 0.1,
 * AdamW with a cosine schedule), report the validation accuracy, and write `<out>/model.safetensors` +
 * `<out>/config.json` (family, config, class names, data config) that `predict` reads.
 */
export async function finetuneCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length) throw new UsageError(`finetune takes no positional arguments, got: ${args.positional.join(' ')}`);
  const name = flagString(args, 'model');
  const data = flagString(args, 'data');
  const out = flagString(args, 'out');
  if (!name) throw new UsageError('finetune needs --model NAME[.TAG] (see visbackbones list)');
  if (!data) throw new UsageError('finetune needs --data DIR (<DIR>/<class>/<image>)');
  if (!out) throw new UsageError('finetune needs --out DIR');
  const epochs = flagInt(args, 'epochs', 10)!;
  const batchSize = flagInt(args, 'batch-size', 16)!;
  const seed = flagNumber(args, 'seed', 0, Number.isInteger, 'an integer');
  const lr = flagNumber(args, 'lr', 5e-4, (v) => v > 0, 'a positive number');
  const valSplit = flagNumber(args, 'val-split', 0.1, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const maxSteps = flagInt(args, 'max-steps');
  const [arch] = splitModelNameTag(name);
  const { model: overrides, imgSize } = splitImgSize(arch, modelOverrides(args));
  await selectBackend(args);

  const ds = await imageFolder(data);
  const decoded = await decodeImageFolder(ds, {
    strict: args.flags.has('strict'),
    onError: (p, e) => io.err(`skipped ${p}: ${e.message}`),
  });
  const numClasses = ds.classNames.length;
  const n = decoded.images.length;
  const order = new DataRng(seed).permutation(n);
  const nVal = valSplit > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * valSplit))) : 0;
  const val = order.slice(0, nVal);
  const train = order.slice(nVal);
  if (train.length < batchSize)
    throw new VisBackbonesError(
      `--data ${data}: ${train.length} training images, fewer than one batch of ${batchSize} (lower --batch-size)`,
    );
  io.out(
    `${n} images in ${numClasses} classes (${ds.classNames.join(', ')}): ${train.length} train, ${nVal} val` +
      (decoded.skipped.length ? `, ${decoded.skipped.length} skipped` : ''),
  );

  let model: Backbone;
  if (args.flags.has('pretrained')) {
    model = await createPretrainedModel(name, {
      ...overrides,
      numClasses,
      cacheDir: flagString(args, 'cache-dir'),
      offline: args.flags.has('offline') || undefined,
      progress: !args.flags.has('no-progress'),
    });
  } else {
    model = getModelEntry(arch).create({ ...overrides, numClasses });
  }
  const cfgSource = hasPretrainedCfg(name) ? getPretrainedCfg(name) : {};
  const dataConfig: DataConfig = resolveDataConfig(cfgSource, imgSize ? { imgSize } : {});
  const transform = createTransform(dataConfig, { isTraining: true, seed, interpolation: 'random' });
  try {
    const trainer = new Trainer<{ x: tf.Tensor4D; y: tf.Tensor1D }>({
      model,
      lr,
      seed,
      warmupSteps: 0,
      loss: (b) => {
        const logits = model.forward(b.x, { training: true }) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, numClasses), logits, undefined, 0.1) as tf.Scalar;
      },
      onStep: (s) => {
        if (s.step % 10 === 0) io.out(`epoch ${s.epoch} step ${s.step} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)}`);
      },
    });
    const source = {
      size: train.length,
      batch: (idx: number[]) => {
        const xs = idx.map((i) => {
          const im = decoded.images[train[i]];
          const t = tf.tensor3d(Int32Array.from(im.data), [im.height, im.width, 3], 'int32');
          try {
            return transform(t);
          } finally {
            t.dispose();
          }
        });
        const x = tf.stack(xs) as tf.Tensor4D;
        tf.dispose(xs);
        return {
          x,
          y: tf.tensor1d(
            idx.map((i) => decoded.labels[train[i]]),
            'int32',
          ),
        };
      },
    };
    const infos = trainer.fit(source, { epochs, batchSize, maxSteps });
    if (infos.length) io.out(`trained ${infos.length} steps, last loss ${infos[infos.length - 1].loss.toFixed(4)}`);
    trainer.dispose();
    if (nVal) {
      let correct = 0;
      for (const i of val) {
        const crop = evalResizeCrop(decoded.images[i], dataConfig);
        const pred = tf.tidy(() => {
          const x = tf.tensor4d(normalizeU8(crop, dataConfig.mean, dataConfig.std), [1, crop.height, crop.width, 3]);
          return (model.forward(x) as tf.Tensor).argMax(-1).dataSync()[0];
        });
        if (pred === decoded.labels[i]) correct++;
      }
      io.out(`val accuracy ${((100 * correct) / nVal).toFixed(1)}% (${correct}/${nVal})`);
    }
    saveCheckpointDir(out, model, { model: name, classNames: ds.classNames, dataConfig });
    io.out(`wrote ${out}/model.safetensors and ${out}/config.json`);
  } finally {
    model.dispose();
  }
  return 0;
}
