import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VisBackbonesError } from '../errors.js';
import { resolveDataConfig } from '../data/dataConfig.js';
import { decodeImageFolder, imageFolder } from '../data/imageFolder.js';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag } from '../data/pretrainedCfgs.js';
import { createTransform } from '../data/transforms.js';
import type { Module } from '../layers/module.js';
import type { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { fastmim } from '../pretrain/fastmim.js';
import { fcmae } from '../pretrain/fcmae.js';
import { mixmim } from '../pretrain/mixmim.js';
import { simmim } from '../pretrain/simmim.js';
import { Trainer } from '../train/trainer.js';
import { writeSafetensors } from '../weights/safetensors.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';
import { CliIO, modelOverrides, selectBackend } from './common.js';
import { splitImgSize } from './sizeOverride.js';

/** Flags of `pretrain`. */
export const PRETRAIN_FLAGS = {
  values: ['method', 'model', 'data', 'steps', 'batch-size', 'lr', 'img-size', 'config', 'out', 'seed', 'backend'],
  switches: ['strict'],
};

const METHODS = ['simmim', 'mixmim', 'fastmim', 'fcmae'] as const;
type Method = (typeof METHODS)[number];

interface Pretrainer extends Module {
  loss(x: tf.Tensor, opts: { mask: never; training?: boolean }): tf.Scalar;
}

/**
 * `visbackbones pretrain --method simmim|mixmim|fastmim|fcmae --model NAME --data DIR --out DIR [--steps 100]
 * [--batch-size 8] [--lr 1e-4] [--img-size N] [--config JSON|FILE] [--seed 0]`: masked-image-modeling
 * pretraining of a backbone on the images under DIR (any folder layout with class folders; labels unused),
 * with RandomResizedCrop (scale 0.67-1) + flip as the official recipes. Writes `<out>/model.safetensors`
 * (the backbone alone, timm keys) and `<out>/pretrainer.safetensors` (encoder + decoder).
 */
export async function pretrainCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length) throw new UsageError(`pretrain takes no positional arguments, got: ${args.positional.join(' ')}`);
  const method = flagString(args, 'method') as Method | undefined;
  const name = flagString(args, 'model');
  const data = flagString(args, 'data');
  const out = flagString(args, 'out');
  if (!method || !METHODS.includes(method)) throw new UsageError(`pretrain needs --method ${METHODS.join('|')}`);
  if (!name || !data || !out) throw new UsageError('pretrain needs --model NAME, --data DIR and --out DIR');
  const steps = flagInt(args, 'steps', 100)!;
  const batchSize = flagInt(args, 'batch-size', 8)!;
  const seed = Number(flagString(args, 'seed') ?? 0);
  const lr = Number(flagString(args, 'lr') ?? 1e-4);
  if (!(lr > 0)) throw new UsageError(`--lr ${flagString(args, 'lr')}: expected a positive number`);
  const [arch] = splitModelNameTag(name);
  const entry = getModelEntry(arch);
  const { model: overrides, imgSize } = splitImgSize(arch, modelOverrides(args));
  await selectBackend(args);
  const ds = await imageFolder(data);
  const decoded = await decodeImageFolder(ds, {
    strict: args.flags.has('strict'),
    onError: (p, e) => io.err(`skipped ${p}: ${e.message}`),
  });
  if (decoded.images.length < batchSize)
    throw new VisBackbonesError(`--data ${data}: ${decoded.images.length} images, fewer than one batch of ${batchSize}`);
  const backbone: Backbone = entry.create({ ...overrides, numClasses: 0, ...(method === 'fcmae' ? { featuresOnly: true } : {}) });
  const size = imgSize ?? (backbone.config.imgSize as number | undefined) ?? 224;
  const dataConfig = resolveDataConfig(hasPretrainedCfg(name) ? getPretrainedCfg(name) : {}, { imgSize: size });
  const transform = createTransform(dataConfig, {
    isTraining: true,
    seed,
    scale: [0.67, 1],
    ratio: [3 / 4, 4 / 3],
    colorJitter: 0,
    interpolation: 'bicubic',
  });
  let model: Pretrainer;
  try {
    model = (method === 'simmim'
      ? simmim(backbone)
      : method === 'fastmim'
        ? fastmim(backbone)
        : method === 'fcmae'
          ? fcmae(backbone as Parameters<typeof fcmae>[0])
          : mixmim(backbone as Parameters<typeof mixmim>[0])) as unknown as Pretrainer;
  } catch (e) {
    backbone.dispose();
    throw new VisBackbonesError(`--method ${method} cannot pretrain ${arch}: ${(e as Error).message}`);
  }
  const gen = model as unknown as { generateMask: (...a: unknown[]) => unknown };
  try {
    const trainer = new Trainer<tf.Tensor4D>({
      model,
      lr,
      seed,
      warmupSteps: Math.min(10, Math.floor(steps / 10)),
      loss: (x, ctx) => {
        const mask = method === 'mixmim' ? gen.generateMask(ctx.rng) : gen.generateMask(x.shape[0], size, ctx.rng);
        return model.loss(x, { mask: mask as never, training: true });
      },
      onStep: (s) => {
        if (s.step % 10 === 0 || s.step === steps - 1) io.out(`step ${s.step} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)}`);
      },
    });
    const source = {
      size: decoded.images.length,
      batch: (idx: number[]) => {
        const xs = idx.map((i) => {
          const im = decoded.images[i];
          const t = tf.tensor3d(Int32Array.from(im.data), [im.height, im.width, 3], 'int32');
          try {
            return transform(t);
          } finally {
            t.dispose();
          }
        });
        const x = tf.stack(xs) as tf.Tensor4D;
        tf.dispose(xs);
        return x;
      },
    };
    const epochs = Math.ceil(steps / Math.floor(decoded.images.length / batchSize));
    const infos = trainer.fit(source, { epochs, batchSize, maxSteps: steps });
    trainer.dispose();
    mkdirSync(out, { recursive: true });
    for (const [file, m] of [
      ['model.safetensors', backbone],
      ['pretrainer.safetensors', model],
    ] as const) {
      const sd = m.stateDict();
      writeFileSync(join(out, file), writeSafetensors(sd, { format: 'pt' }));
      tf.dispose(Object.values(sd));
    }
    io.out(
      `${method}: ${infos.length} steps, loss ${infos[0]?.loss.toFixed(4)} -> ${infos[infos.length - 1]?.loss.toFixed(4)}; ` +
        `wrote ${out}/model.safetensors`,
    );
  } finally {
    model.dispose();
  }
  return 0;
}
