import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VisBackbonesError } from '../errors.js';
import { DataConfig, resolveDataConfig } from '../data/dataConfig.js';
import { createDecodePool, DecodePool } from '../data/decodePool.js';
import { ImageFolder, imageFolder } from '../data/imageFolder.js';
import { normalizeU8, U8Image } from '../data/imageOps.js';
import { evalResizeCrop } from '../data/evalTransform.js';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag } from '../data/pretrainedCfgs.js';
import { DataRng } from '../data/rng.js';
import { createTransform } from '../data/transforms.js';
import { saveCheckpointDir } from '../hub/checkpointDir.js';
import { createPretrainedModel } from '../hub/createPretrained.js';
import { manualSeed } from '../layers/init.js';
import type { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { Trainer } from '../train/trainer.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';
import { CliIO, modelOverrides, selectBackend } from './common.js';
import { EpochRecord, learningCurvePng } from './curves.js';
import { epochBatches } from './epochBatches.js';
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
    'workers',
    'val-data',
  ],
  switches: ['pretrained', 'strict', 'offline', 'no-progress', 'resume'],
};

function flagNumber(args: ParsedArgs, name: string, def: number, ok: (v: number) => boolean, what: string): number {
  const v = flagString(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} ${v}: expected ${what}`);
  return n;
}

/** `<out>/trainer.json`: where a run stands (what `--resume` continues from) and its learning curve. */
export interface FinetuneState {
  format: 'visbackbones-finetune';
  model: string;
  classNames: string[];
  seed: number;
  epochs: number;
  batchSize: number;
  lr: number;
  valSplit: number;
  /** The separate validation folder, if any. */
  valData?: string;
  /** Epochs completed (the state in `trainer.safetensors` is the one at the end of this epoch). */
  epoch: number;
  history: EpochRecord[];
  /** Undecodable files met so far (skipped). */
  skipped: string[];
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
}

/** `epoch 2/10 [=======>        ]  12/24  1.9 steps/s  ETA 6s` */
export function stepProgress(label: string, done: number, total: number, seconds: number, width = 24): string {
  const f = Math.min(1, done / total);
  const fill = Math.round(f * width);
  const bar = `${'='.repeat(Math.max(0, fill - 1))}${fill ? (f >= 1 ? '=' : '>') : ''}${' '.repeat(width - fill)}`;
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? Math.ceil((total - done) / rate) : NaN;
  return `${label} [${bar}] ${String(done).padStart(String(total).length)}/${total}  ${rate.toFixed(2)} steps/s  ETA ${Number.isFinite(eta) ? `${eta}s` : '?'}`;
}

/** Top-1 accuracy of `model` on decoded validation crops (eval transform), in batches. */
function accuracy(model: Backbone, crops: { img: U8Image; label: number }[], dc: DataConfig, batch: number): number {
  let correct = 0;
  for (let s = 0; s < crops.length; s += batch) {
    const part = crops.slice(s, s + batch);
    const [h, w] = [part[0].img.height, part[0].img.width];
    const buf = new Float32Array(part.length * h * w * 3);
    part.forEach((c, i) => buf.set(normalizeU8(c.img, dc.mean, dc.std), i * h * w * 3));
    const pred = tf.tidy(() => Array.from((model.forward(tf.tensor4d(buf, [part.length, h, w, 3])) as tf.Tensor).argMax(-1).dataSync()));
    pred.forEach((p, i) => {
      if (p === part[i].label) correct++;
    });
  }
  return correct / crops.length;
}

/**
 * `visbackbones finetune --model NAME[.TAG] --data DIR --out DIR [--epochs 10] [--img-size N] [--batch-size 16]
 * [--lr 5e-4] [--val-split 0.1 | --val-data DIR] [--pretrained] [--strict] [--seed 0] [--workers 2] [--resume] [--max-steps N]
 * [--config JSON|FILE] [--backend wasm|cpu]`: fine-tune a classifier on `<data>/<class>/<image>`.
 *
 * The images stream from disk every epoch, decoded in `--workers` worker threads while the main thread
 * trains (timm's training transform, label smoothing 0.1, AdamW with a cosine schedule over `--epochs`).
 * After every epoch it reports the mean train loss and the validation accuracy (eval transform on the
 * held-out `--val-split`, chosen by `--seed` from the file list, or the separate folder `--val-data` with
 * the same class folders) and writes `<out>/model.safetensors` +
 * `<out>/config.json` (family, config, class names, data config) that `predict` reads, the training state
 * (`trainer.safetensors`: weights, optimizer moments, step; `trainer.json`: epochs done, history) and the
 * learning curve `curve.png`. `--resume` continues from that state (same data order and augmentations as
 * an uninterrupted run). `--max-steps` stops early (the schedule still spans `--epochs`).
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
  const valData = flagString(args, 'val-data');
  if (valData && flagString(args, 'val-split') !== undefined) throw new UsageError('pass --val-split or --val-data, not both');
  const valSplit = valData ? 0 : flagNumber(args, 'val-split', 0.1, (v) => v >= 0 && v < 1, 'a fraction in [0, 1)');
  const workers = flagNumber(args, 'workers', 2, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const maxSteps = flagInt(args, 'max-steps');
  const strict = args.flags.has('strict');
  const resume = args.flags.has('resume');
  const [arch] = splitModelNameTag(name);
  const { model: overrides, imgSize } = splitImgSize(arch, modelOverrides(args));
  await selectBackend(args);

  const ds = await imageFolder(data);
  const numClasses = ds.classNames.length;
  const n = ds.samples.length;
  const order = new DataRng(seed).permutation(n);
  const nSplit = valSplit > 0 ? Math.min(n - 1, Math.max(1, Math.round(n * valSplit))) : 0;
  const trainSet: ImageFolder = { ...ds, samples: Array.from(order.slice(nSplit), (i) => ds.samples[i]) };
  let valSamples = Array.from(order.slice(0, nSplit), (i) => ds.samples[i]);
  if (valData) {
    const vds = await imageFolder(valData);
    if (JSON.stringify(vds.classNames) !== JSON.stringify(ds.classNames))
      throw new VisBackbonesError(
        `--val-data ${valData}: classes (${vds.classNames.join(', ')}) differ from --data's (${ds.classNames.join(', ')})`,
      );
    valSamples = vds.samples;
  }
  const nVal = valSamples.length;
  const stepsPerEpoch = Math.floor(trainSet.samples.length / batchSize);
  if (stepsPerEpoch < 1)
    throw new VisBackbonesError(
      `--data ${data}: ${trainSet.samples.length} training images, fewer than one batch of ${batchSize} (lower --batch-size)`,
    );
  io.out(
    `${n} images in ${numClasses} classes (${ds.classNames.join(', ')}): ${trainSet.samples.length} train, ${nVal} val` +
      (valData ? ` (${valData})` : ''),
  );

  const statePath = join(out, 'trainer.json');
  let state: FinetuneState = {
    format: 'visbackbones-finetune',
    model: name,
    classNames: ds.classNames,
    seed,
    epochs,
    batchSize,
    lr,
    valSplit,
    ...(valData ? { valData } : {}),
    epoch: 0,
    history: [],
    skipped: [],
  };
  if (resume) {
    if (!existsSync(statePath) || !existsSync(join(out, 'trainer.safetensors')))
      throw new VisBackbonesError(`--resume: no training state in ${out} (expected trainer.json and trainer.safetensors)`);
    const prev = JSON.parse(readFileSync(statePath, 'utf8')) as FinetuneState;
    const same = (k: keyof FinetuneState) => JSON.stringify(prev[k]) === JSON.stringify(state[k]);
    for (const k of ['model', 'classNames', 'seed', 'batchSize', 'lr', 'valSplit', 'valData'] as const)
      if (!same(k))
        throw new VisBackbonesError(
          `--resume: ${statePath} was written with ${k} ${JSON.stringify(prev[k])}, this run has ${JSON.stringify(state[k])}`,
        );
    state = { ...prev, epochs };
  }

  manualSeed(seed);
  let model: Backbone;
  if (args.flags.has('pretrained') && !resume) {
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
  const tty = !args.flags.has('no-progress') && typeof process !== 'undefined' && !!process.stderr?.isTTY;
  const reported = new Set(state.skipped);
  const onError = (p: string, e: Error) => {
    if (reported.has(p)) return;
    reported.add(p);
    state.skipped.push(p);
    io.err(`skipped ${p}: ${e.message}`);
  };
  let pool: DecodePool | null = null;
  let trainer: Trainer<{ x: tf.Tensor4D; y: tf.Tensor1D }> | null = null;
  try {
    pool = await createDecodePool({ threads: workers });
    trainer = new Trainer<{ x: tf.Tensor4D; y: tf.Tensor1D }>({
      model,
      lr,
      seed,
      warmupSteps: 0,
      totalSteps: stepsPerEpoch * epochs,
      loss: (b) => {
        const logits = model.forward(b.x, { training: true }) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(b.y, numClasses), logits, undefined, 0.1) as tf.Scalar;
      },
    });
    if (resume) {
      trainer.loadCheckpoint(new Uint8Array(readFileSync(join(out, 'trainer.safetensors'))));
      io.out(`resumed from ${out} after epoch ${state.epoch} (step ${trainer.step})`);
    }
    // validation crops: decoded (through the pool) and eval-transformed once
    const valCrops: { img: U8Image; label: number }[] = [];
    const vals = await Promise.all(
      valSamples.map((s) =>
        pool!.decode(s.path).then(
          (img) => ({ img, s }),
          (e: Error) => ({ e, s }),
        ),
      ),
    );
    for (const v of vals) {
      const s = v.s;
      if ('e' in v) {
        if (strict) throw v.e;
        onError(s.path, v.e);
      } else valCrops.push({ img: evalResizeCrop(v.img, dataConfig), label: s.label });
    }
    let stopped = false;
    for (let epoch = state.epoch; epoch < epochs && !stopped; epoch++) {
      // the epoch's order and augmentations depend on (seed, epoch) only: a resumed run repeats them
      const transform = createTransform(dataConfig, { isTraining: true, seed: seed * 100_003 + epoch, interpolation: 'random' });
      const t0 = Date.now();
      let sum = 0;
      let count = 0;
      const totalSteps = stepsPerEpoch * epochs;
      const tr = trainer; // narrowed for the closure
      const stepLosses = epochBatches(
        trainSet,
        { transform, batchSize, seed, epoch, pool, strict, onError },
        (b) => tr.trainStep({ x: b.x, y: b.y }, { step: tr.step, epoch, totalSteps, batchSize }).loss,
      );
      for await (const loss of stepLosses) {
        sum += loss;
        count++;
        const label = `epoch ${epoch + 1}/${epochs}`;
        if (tty) {
          const line = stepProgress(label, count, stepsPerEpoch, (Date.now() - t0) / 1000);
          process.stderr.write(`\r${line} loss ${loss.toFixed(4)}\x1b[K`);
        } else if (trainer.step % 10 === 0) io.out(`${label} step ${trainer.step} loss ${loss.toFixed(4)}`);
        if (maxSteps !== undefined && trainer.step >= maxSteps) {
          stopped = true;
          break;
        }
      }
      if (tty) process.stderr.write('\n');
      const complete = count === stepsPerEpoch || (!stopped && count > 0);
      const acc = valCrops.length ? accuracy(model, valCrops, dataConfig, batchSize) : null;
      const rec: EpochRecord = { epoch: epoch + 1, trainLoss: count ? sum / count : NaN, valAccuracy: acc, steps: trainer.step };
      io.out(
        `epoch ${epoch + 1}/${epochs}: train loss ${rec.trainLoss.toFixed(4)}` +
          (acc === null ? '' : `, val accuracy ${(100 * acc).toFixed(1)}% (${Math.round(acc * valCrops.length)}/${valCrops.length})`) +
          ` (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
      );
      saveCheckpointDir(out, model, { model: name, classNames: ds.classNames, dataConfig });
      if (complete) {
        // the state at an epoch's end is what --resume continues from
        state.epoch = epoch + 1;
        state.history.push(rec);
        mkdirSync(out, { recursive: true });
        writeAtomic(join(out, 'trainer.safetensors'), trainer.checkpoint());
        writeAtomic(statePath, `${JSON.stringify(state, null, 2)}\n`);
        writeAtomic(join(out, 'curve.png'), learningCurvePng(state.history));
      }
    }
    if (state.skipped.length) io.out(`${state.skipped.length} undecodable file(s) skipped`);
    io.out(`trained ${trainer.step} steps; wrote ${out}/model.safetensors and ${out}/config.json`);
  } finally {
    trainer?.dispose();
    await pool?.close();
    model.dispose();
  }
  return 0;
}
