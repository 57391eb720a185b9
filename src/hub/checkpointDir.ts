import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, VisBackbonesError } from '../errors.js';
import type { DataConfig } from '../data/dataConfig.js';
import type { Backbone } from '../models/backbone.js';
import { getFamily } from '../models/registry.js';
import { loadTimmWeights } from '../weights/loadTimmWeights.js';
import { writeSafetensors } from '../weights/safetensors.js';

/** `config.json` of a checkpoint folder (what `finetune` writes). */
export interface CheckpointInfo {
  format: 'visbackbones-checkpoint';
  /** The registered name the model started from (`'vit_small_patch16_224.augreg_in21k'`), if any. */
  model?: string;
  family: string;
  /** The model's resolved config (camelCase): `getFamily(family).create(config)` rebuilds it. */
  config: Record<string, unknown>;
  numClasses: number;
  /** Class `i` -> name (the class-folder names of a fine-tuned model). */
  classNames: string[] | null;
  dataConfig: DataConfig;
}

/** Whether `dir` is a checkpoint folder (`config.json` + `model.safetensors`). */
export function isCheckpointDir(dir: string): boolean {
  try {
    return statSync(dir).isDirectory() && existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model.safetensors'));
  } catch {
    return false;
  }
}

/** Write `<dir>/model.safetensors` (timm key names) and `<dir>/config.json`. */
export function saveCheckpointDir(
  dir: string,
  model: Backbone,
  info: { model?: string; classNames?: string[] | null; dataConfig: DataConfig },
): void {
  mkdirSync(dir, { recursive: true });
  const sd = model.stateDict();
  try {
    writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(sd, { format: 'pt' }));
  } finally {
    tf.dispose(Object.values(sd));
  }
  const cfg: CheckpointInfo = {
    format: 'visbackbones-checkpoint',
    ...(info.model ? { model: info.model } : {}),
    family: model.family,
    config: { ...model.config, numClasses: model.numClasses },
    numClasses: model.numClasses,
    classNames: info.classNames ?? null,
    dataConfig: info.dataConfig,
  };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
}

/**
 * Rebuild the model of a checkpoint folder (strict load) with its class names and data config; the
 * model's `pretrainedCfg` carries them (`labelNames`, the data config fields) so `resolveDataConfig`
 * and `classify` use them.
 */
export function loadCheckpointDir(dir: string): { model: Backbone; info: CheckpointInfo } {
  check(isCheckpointDir(dir), () => `'${dir}' is not a checkpoint folder (expected config.json and model.safetensors in it)`);
  let info: CheckpointInfo;
  try {
    info = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as CheckpointInfo;
  } catch (e) {
    throw new VisBackbonesError(`${join(dir, 'config.json')}: invalid JSON (${(e as Error).message})`);
  }
  check(
    info.format === 'visbackbones-checkpoint' && typeof info.family === 'string' && info.config,
    () => `${join(dir, 'config.json')}: not a visbackbones checkpoint config (needs format, family, config)`,
  );
  const model = getFamily(info.family).create(info.config);
  try {
    loadTimmWeights(model, new Uint8Array(readFileSync(join(dir, 'model.safetensors'))));
  } catch (e) {
    model.dispose();
    throw e;
  }
  const d = info.dataConfig;
  (model as unknown as { pretrainedCfg: Record<string, unknown> }).pretrainedCfg = {
    name: info.model ?? dir,
    architecture: info.model?.split('.')[0] ?? info.family,
    tag: null,
    numClasses: info.numClasses,
    labelNames: info.classNames,
    inputSize: d.inputSize,
    interpolation: d.interpolation,
    mean: d.mean,
    std: d.std,
    cropPct: d.cropPct,
    cropMode: d.cropMode,
  };
  return { model, info };
}
