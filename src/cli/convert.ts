import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toLayersModel } from '../adapter/layersAdapter.js';
import { VisBackbonesError } from '../errors.js';
import { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { loadTimmWeights } from '../weights/loadTimmWeights.js';
import { readSafetensors } from '../weights/safetensors.js';
import { loadLayersModelFromDir, saveLayersModelToDir } from '../weights/tfjsFormat.js';
import { ParsedArgs, UsageError, flagString } from './args.js';
import { CliIO, imageSizeOf, modelOverrides, selectBackend } from './common.js';

/** What `convert` writes next to `model.json`: everything a page needs to feed the model. */
export interface ConvertedModelInfo {
  model: string;
  family: string;
  config: Record<string, unknown>;
  /** `[H, W, C]` of one input image (NHWC). */
  inputShape: [number, number, number];
  mean: number[];
  std: number[];
  numClasses: number;
  featureInfo: { numChs: number; reduction: number; module: string }[];
  source: string;
}

/** Classes of the checkpoint's classifier (rows of the first 2-D `*.weight` under a head prefix), or 0 when it has none. */
export function checkpointNumClasses(model: Backbone, sd: Record<string, tf.Tensor>): number {
  for (const p of model.headPrefixes) {
    const k = Object.keys(sd).find((key) => key.startsWith(p) && key.endsWith('weight') && sd[key].rank === 2);
    if (k) return sd[k].shape[0];
  }
  return 0;
}

/** Summary statistics of a tensor, one line. */
export function tensorStats(t: tf.Tensor): string {
  const v = t.dataSync();
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    min = Math.min(min, v[i]);
    max = Math.max(max, v[i]);
    sum += v[i];
  }
  const mean = sum / v.length;
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += (v[i] - mean) ** 2;
  return `shape [${t.shape.join(', ')}] mean ${mean.toFixed(6)} std ${Math.sqrt(ss / v.length).toFixed(6)} min ${min.toFixed(6)} max ${max.toFixed(6)}`;
}

/**
 * `visbackbones convert --timm FILE.safetensors --model NAME [--img-size N] [--config JSON|FILE]
 * --out DIR [--check] [--backend wasm|cpu]`: load a timm checkpoint (strict; windows and sizes
 * adapted by the family's checkpoint filter) and write a TF.js layers-model directory
 * (`model.json`, `weights.bin`) plus `visbackbones.json` (input shape, normalisation, features).
 * `--check` reloads the directory, runs a seeded input through it and the original model, prints
 * output statistics and fails if they differ.
 */
export async function convertCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length) throw new UsageError(`convert takes no positional arguments, got: ${args.positional.join(' ')}`);
  const file = flagString(args, 'timm');
  const name = flagString(args, 'model');
  const out = flagString(args, 'out');
  if (!file) throw new UsageError('convert needs --timm FILE.safetensors');
  if (!name) throw new UsageError('convert needs --model NAME (see visbackbones list)');
  if (!out) throw new UsageError('convert needs --out DIR');
  const entry = getModelEntry(name);
  const overrides = modelOverrides(args);
  if (!existsSync(file)) throw new VisBackbonesError(`checkpoint not found: ${file}`);
  if (!statSync(file).isFile()) throw new VisBackbonesError(`checkpoint is not a file: ${file}`);
  await selectBackend(args);
  const sd = readSafetensors(new Uint8Array(readFileSync(file)));
  let model: Backbone | null = null;
  let loaded: tf.LayersModel | null = null;
  try {
    model = entry.create(overrides);
    const nc = overrides.numClasses !== undefined ? Number(overrides.numClasses) : checkpointNumClasses(model, sd);
    if (nc !== model.numClasses) model.resetClassifier(nc);
    const res = loadTimmWeights(model, sd, { strict: true });
    io.out(
      `loaded ${res.loaded.length} tensors from ${file}${res.skipped.length ? `, skipped ${res.skipped.length} (${res.skipped.slice(0, 6).join(', ')}${res.skipped.length > 6 ? ', ...' : ''})` : ''}`,
    );
    const cfg = { ...entry.config, ...overrides, numClasses: nc };
    const [h, w] = imageSizeOf(cfg);
    const inputShape: [number, number, number] = [h, w, model.inChans];
    const layers = toLayersModel(model, inputShape, 'backbone');
    await saveLayersModelToDir(layers, out);
    const info: ConvertedModelInfo = {
      model: name,
      family: entry.family,
      config: cfg,
      inputShape,
      mean: entry.pretrainedCfg.mean,
      std: entry.pretrainedCfg.std,
      numClasses: nc,
      featureInfo: model.featureInfo.map((f) => ({ ...f })),
      source: resolve(file),
    };
    writeFileSync(join(out, 'visbackbones.json'), JSON.stringify(info, null, 2));
    io.out(
      `wrote ${join(out, 'model.json')}, ${join(out, 'weights.bin')} and ${join(out, 'visbackbones.json')} (${name}, input ${inputShape.join('x')}, ${nc} classes)`,
    );
    if (args.flags.has('check')) {
      loaded = await loadLayersModelFromDir(out);
      const x = tf.randomNormal([2, ...inputShape], 0, 1, 'float32', 0);
      const a = model.forward(x) as tf.Tensor;
      const b = loaded.predict(x) as tf.Tensor;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
      io.out(`check: model     ${tensorStats(a)}`);
      io.out(`check: reloaded  ${tensorStats(b)}`);
      io.out(`check: max |model - reloaded| = ${diff.toExponential(3)}`);
      tf.dispose([x, a, b]);
      if (!(diff <= 1e-5)) {
        io.err(`check failed: the reloaded directory differs from the model by ${diff}`);
        return 1;
      }
    }
  } finally {
    Object.values(sd).forEach((t) => t.dispose());
    model?.dispose();
    loaded?.dispose();
  }
  return 0;
}
