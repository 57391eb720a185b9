import * as tf from '@tensorflow/tfjs';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { VisBackbonesError } from '../errors.js';
import { resolveDataConfig } from '../data/dataConfig.js';
import { createDecodePool, DecodePool } from '../data/decodePool.js';
import { evalResizeCrop } from '../data/evalTransform.js';
import { ImageFolder, imageFolder } from '../data/imageFolder.js';
import { normalizeU8 } from '../data/imageOps.js';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag } from '../data/pretrainedCfgs.js';
import { DataRng } from '../data/rng.js';
import { createTransform } from '../data/transforms.js';
import { manualSeed } from '../layers/init.js';
import type { Module } from '../layers/module.js';
import type { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { fastmim } from '../pretrain/fastmim.js';
import { fcmae } from '../pretrain/fcmae.js';
import { mixmim } from '../pretrain/mixmim.js';
import { disposeMixMIMMask, MixMIMMask } from '../pretrain/mixmimMask.js';
import { simmim } from '../pretrain/simmim.js';
import { Trainer } from '../train/trainer.js';
import { imageGrid, tensorToImages } from '../viz/imageGrid.js';
import { encodePng } from '../viz/png.js';
import { writeSafetensors } from '../weights/safetensors.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';
import { CliIO, modelOverrides, selectBackend } from './common.js';
import { pretrainCurvePng } from './curves.js';
import { epochBatches } from './epochBatches.js';
import { maskedReconstruction } from './pretrainViz.js';
import { splitImgSize } from './sizeOverride.js';

/** Flags of `pretrain`. */
export const PRETRAIN_FLAGS = {
  values: [
    'method',
    'model',
    'data',
    'steps',
    'batch-size',
    'lr',
    'img-size',
    'config',
    'out',
    'seed',
    'backend',
    'val-split',
    'eval-every',
    'workers',
    'method-config',
  ],
  switches: ['strict'],
};

const METHODS = ['simmim', 'mixmim', 'fastmim', 'fcmae'] as const;
type Method = (typeof METHODS)[number];

interface Pretrainer extends Module {
  loss(x: tf.Tensor, opts: { mask: never; training?: boolean }): tf.Scalar;
}

/** `<out>/losses.json`: the training loss of every step and the validation loss of every evaluation. */
export interface PretrainLosses {
  method: Method;
  model: string;
  train: [number, number][];
  val: [number, number][];
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/**
 * `visbackbones pretrain --method simmim|mixmim|fastmim|fcmae --model NAME --data DIR --out DIR [--steps 100]
 * [--batch-size 8] [--lr 1e-4] [--img-size N] [--config JSON|FILE] [--seed 0] [--val-split 0.1]
 * [--eval-every N] [--workers 2] [--method-config JSON] [--strict]`: masked-image-modeling pretraining of a backbone on the images
 * under DIR (any folder layout with class folders; labels unused), with RandomResizedCrop (scale 0.67-1) +
 * flip as the official recipes; images stream from disk, decoded in worker threads.
 *
 * Every `--eval-every` steps (default steps / 10) and at the end it computes the validation loss on the
 * held-out `--val-split` of the files (centre crops, the same fixed masks every time: the MIM
 * data-scaling study's signal, Xie et al. 2023, that the validation loss predicts fine-tuning quality),
 * logs it, writes `<out>/losses.json` and the plot `<out>/loss.png`, and draws the first validation images
 * (original | masked | reconstruction, rows) to `<out>/recon/step_NNNNNN.png` (not for FastMIM, which
 * predicts HOG features). `--method-config` passes the method's options (camelCase: `decoderDim`,
 * `decoderDepth`, `maskRatio`, ...). Writes `<out>/model.safetensors` (the backbone alone, timm keys) and
 * `<out>/pretrainer.safetensors` (encoder + decoder).
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
  const valSplit = Number(flagString(args, 'val-split') ?? 0.1);
  if (!(valSplit >= 0 && valSplit < 1)) throw new UsageError(`--val-split ${flagString(args, 'val-split')}: expected a fraction in [0, 1)`);
  const evalEvery = flagInt(args, 'eval-every', Math.max(1, Math.floor(steps / 10)))!;
  const workers = Number(flagString(args, 'workers') ?? 2);
  if (!(Number.isInteger(workers) && workers >= 0))
    throw new UsageError(`--workers ${flagString(args, 'workers')}: expected a non-negative integer`);
  if (method === 'mixmim' && batchSize % 2)
    throw new UsageError(`--batch-size ${batchSize}: MixMIM mixes image i with image B-1-i, the batch must be even`);
  const strict = args.flags.has('strict');
  let methodOpts: Record<string, unknown> = {};
  const mc = flagString(args, 'method-config');
  if (mc !== undefined) {
    try {
      methodOpts = JSON.parse(mc) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError(`--method-config ${mc}: invalid JSON (${(e as Error).message})`);
    }
    if (typeof methodOpts !== 'object' || methodOpts === null || Array.isArray(methodOpts))
      throw new UsageError(`--method-config ${mc}: expected a JSON object of the method's options`);
  }
  const [arch] = splitModelNameTag(name);
  const entry = getModelEntry(arch);
  const { model: overrides, imgSize } = splitImgSize(arch, modelOverrides(args));
  await selectBackend(args);
  const ds = await imageFolder(data);
  const n = ds.samples.length;
  const order = new DataRng(seed).permutation(n);
  const nVal = valSplit > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * valSplit))) : 0;
  const valSamples = Array.from(order.slice(0, nVal), (i) => ds.samples[i]);
  const trainSet: ImageFolder = { ...ds, samples: Array.from(order.slice(nVal), (i) => ds.samples[i]) };
  const perEpoch = Math.floor(trainSet.samples.length / batchSize);
  if (perEpoch < 1)
    throw new VisBackbonesError(`--data ${data}: ${trainSet.samples.length} training images, fewer than one batch of ${batchSize}`);
  io.out(`${n} images: ${trainSet.samples.length} train, ${nVal} val`);
  manualSeed(seed);
  const backbone: Backbone = entry.create({ ...overrides, numClasses: 0, ...(method === 'fcmae' ? { featuresOnly: true } : {}) });
  const size = imgSize ?? (backbone.config.imgSize as number | undefined) ?? 224;
  const dataConfig = resolveDataConfig(hasPretrainedCfg(name) ? getPretrainedCfg(name) : {}, { imgSize: size, cropPct: 1 });
  let model: Pretrainer;
  try {
    model = (method === 'simmim'
      ? simmim(backbone, methodOpts)
      : method === 'fastmim'
        ? fastmim(backbone, methodOpts)
        : method === 'fcmae'
          ? fcmae(backbone as Parameters<typeof fcmae>[0], methodOpts)
          : mixmim(backbone as Parameters<typeof mixmim>[0], methodOpts)) as unknown as Pretrainer;
  } catch (e) {
    backbone.dispose();
    throw new VisBackbonesError(`--method ${method} cannot pretrain ${arch}: ${(e as Error).message}`);
  }
  const gen = model as unknown as { generateMask: (...a: unknown[]) => tf.Tensor | MixMIMMask };
  const makeMask = (b: number, rng: unknown) => (method === 'mixmim' ? gen.generateMask(rng) : gen.generateMask(b, size, rng));
  const disposeMask = (m: tf.Tensor | MixMIMMask) => (m instanceof tf.Tensor ? m.dispose() : disposeMixMIMMask(m));
  const reported = new Set<string>();
  const onError = (p: string, e: Error) => {
    if (reported.has(p)) return;
    reported.add(p);
    io.err(`skipped ${p}: ${e.message}`);
  };
  const losses: PretrainLosses = { method, model: name, train: [], val: [] };
  let pool: DecodePool | null = null;
  let trainer: Trainer<tf.Tensor4D> | null = null;
  const valBatches: { x: tf.Tensor4D; mask: tf.Tensor | MixMIMMask }[] = [];
  try {
    pool = await createDecodePool({ threads: workers });
    // validation: centre crops and masks fixed for the whole run (seeded), so evaluations compare
    const crops: Float32Array[] = [];
    for (const s of valSamples) {
      try {
        const img = await pool.decode(s.path);
        crops.push(normalizeU8(evalResizeCrop(img, dataConfig), dataConfig.mean, dataConfig.std));
      } catch (e) {
        if (strict) throw e;
        onError(s.path, e as Error);
      }
    }
    const vb = method === 'mixmim' ? batchSize : Math.min(batchSize, Math.max(1, crops.length));
    for (let i = 0; i + (method === 'mixmim' ? vb : 1) <= crops.length; i += vb) {
      const part = crops.slice(i, i + vb);
      const buf = new Float32Array(part.length * size * size * 3);
      part.forEach((c, k) => buf.set(c, k * size * size * 3));
      valBatches.push({ x: tf.tensor4d(buf, [part.length, size, size, 3]), mask: makeMask(part.length, 1_000_003 + i) });
    }
    if (nVal && !valBatches.length)
      io.err(
        `no validation loss: ${crops.length} decodable validation image(s)${method === 'mixmim' ? `, MixMIM needs a batch of ${vb}` : ''}`,
      );
    const evaluate = (step: number) => {
      if (!valBatches.length) return;
      let sum = 0;
      let cnt = 0;
      for (const b of valBatches) {
        sum += tf.tidy(() => model.loss(b.x, { mask: b.mask as never, training: false }).dataSync()[0]) * b.x.shape[0];
        cnt += b.x.shape[0];
      }
      const v = sum / cnt;
      losses.val.push([step, v]);
      io.out(`step ${step} val loss ${v.toFixed(4)}`);
      mkdirSync(join(out, 'recon'), { recursive: true });
      const first = valBatches[0];
      const r = maskedReconstruction(method, model, first.x, first.mask);
      if (r) {
        const k = Math.min(4, first.x.shape[0]);
        const [orig, masked, rec] = [first.x, r.masked, r.reconstruction].map((t) =>
          tensorToImages(t.slice(0, k), dataConfig.mean, dataConfig.std),
        );
        tf.dispose([r.masked, r.reconstruction]);
        const g = imageGrid(
          orig.map((o, i) => [o, masked[i], rec[i]]),
          { scale: size <= 96 ? 2 : 1 },
        );
        writeAtomic(
          join(out, 'recon', `step_${String(step).padStart(6, '0')}.png`),
          encodePng(g.pixels, g.width, g.height, { channels: 3, deflate: (b) => deflateSync(b) }),
        );
      }
      writeAtomic(join(out, 'losses.json'), `${JSON.stringify(losses)}\n`);
      writeAtomic(join(out, 'loss.png'), pretrainCurvePng(losses.train, losses.val, `${method} `));
    };
    mkdirSync(out, { recursive: true });
    trainer = new Trainer<tf.Tensor4D>({
      model,
      lr,
      seed,
      warmupSteps: Math.min(10, Math.floor(steps / 10)),
      totalSteps: steps,
      loss: (x, ctx) => model.loss(x, { mask: makeMask(x.shape[0], ctx.rng) as never, training: true }),
    });
    evaluate(0);
    for (let epoch = 0; trainer.step < steps; epoch++) {
      const transform = createTransform(dataConfig, {
        isTraining: true,
        seed: seed * 100_003 + epoch,
        scale: [0.67, 1],
        ratio: [3 / 4, 4 / 3],
        colorJitter: 0,
        interpolation: 'bicubic',
      });
      let got = 0;
      const tr = trainer; // narrowed for the closure
      const stepLosses = epochBatches(
        trainSet,
        { transform, batchSize, seed, epoch, pool, strict, onError },
        (b) => tr.trainStep(b.x, { step: tr.step, epoch, totalSteps: steps, batchSize }).loss,
      );
      for await (const loss of stepLosses) {
        got++;
        losses.train.push([trainer.step, loss]);
        if (trainer.step % 10 === 0 || trainer.step === steps) io.out(`step ${trainer.step} loss ${loss.toFixed(4)}`);
        if (trainer.step % evalEvery === 0 || trainer.step === steps) evaluate(trainer.step);
        if (trainer.step >= steps) break;
      }
      if (!got) throw new VisBackbonesError(`--data ${data}: no decodable training batch of ${batchSize}`);
    }
    for (const [file, m] of [
      ['model.safetensors', backbone],
      ['pretrainer.safetensors', model],
    ] as const) {
      const sd = m.stateDict();
      writeFileSync(join(out, file), writeSafetensors(sd, { format: 'pt' }));
      tf.dispose(Object.values(sd));
    }
    const tr = losses.train;
    io.out(
      `${method}: ${tr.length} steps, loss ${tr[0]?.[1].toFixed(4)} -> ${tr[tr.length - 1]?.[1].toFixed(4)}` +
        (losses.val.length > 1 ? `, val loss ${losses.val[0][1].toFixed(4)} -> ${losses.val[losses.val.length - 1][1].toFixed(4)}` : '') +
        `; wrote ${out}/model.safetensors`,
    );
  } finally {
    for (const b of valBatches) {
      b.x.dispose();
      disposeMask(b.mask);
    }
    trainer?.dispose();
    await pool?.close();
    model.dispose();
  }
  return 0;
}
