import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { getPretrainedCfg, listPretrained, splitModelNameTag, TimmPretrainedCfg } from '../data/pretrainedCfgs.js';
import type { Backbone } from '../models/backbone.js';
import { getModelEntry } from '../models/registry.js';
import { withoutInit } from '../layers/init.js';
import { loadTimmWeights } from '../weights/loadTimmWeights.js';
import { readSafetensors } from '../weights/safetensors.js';
import { DownloadOptions, downloadPretrained } from './download.js';

/** Options of {@link createPretrainedModel}: download options, `numClasses`, and camelCase config overrides. */
export interface PretrainedModelOptions extends DownloadOptions {
  pretrained?: true;
  /** Classes of the classifier: default the checkpoint's; 0 drops the head; another count gets a fresh head. */
  numClasses?: number;
  /**
   * The pretrained cfg to load instead of the name's (a fine-tuned copy on another hub repository,
   * or a test server's).
   */
  pretrainedCfg?: TimmPretrainedCfg;
  [override: string]: unknown;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

const OWN = new Set([
  'pretrained',
  'numClasses',
  'cacheDir',
  'revision',
  'token',
  'endpoint',
  'fetch',
  'offline',
  'onProgress',
  'progress',
  'pretrainedCfg',
]);

/** The classifier's state-dict keys of a cfg (`classifier` is `'head.fc'`, `'head'`, ...). */
function classifierKeys(cfg: TimmPretrainedCfg, sd: Record<string, tf.Tensor>): string[] {
  const names = ([] as unknown[]).concat(cfg.classifier ?? []).map(String);
  return Object.keys(sd).filter((k) => names.some((c) => k === `${c}.weight` || k === `${c}.bias`));
}

/**
 * timm's `create_model(name, pretrained=True)`: build `'<arch>[.<tag>]'`, fetch its weights through the
 * cache ({@link downloadPretrained}) and load them (`loadTimmWeights`, strict). `numClasses` defaults to
 * the checkpoint's; 0 drops the classifier, another count drops the checkpoint's classifier and keeps
 * the fresh one (timm's behaviour). `model.pretrainedCfg` is the tag's cfg (with the model's `numClasses`).
 * A tag without weights throws. In Node a path to a checkpoint folder (`finetune`'s output) loads that model.
 */
export async function createPretrainedModel(name: string, opts: PretrainedModelOptions = {}): Promise<Backbone> {
  if (isNode && !opts.pretrainedCfg && /[\\/]/.test(name)) {
    // a checkpoint folder written by `finetune` / saveCheckpoint
    const dir = await import('./checkpointDir.js');
    if (dir.isCheckpointDir(name)) return dir.loadCheckpointDir(name).model;
    throw new VisBackbonesError(`'${name}' is not a model name nor a checkpoint folder (config.json + model.safetensors)`);
  }
  const [arch] = splitModelNameTag(name);
  const cfg = opts.pretrainedCfg ?? getPretrainedCfg(name);
  if (!cfg.hasWeights) {
    const tags = listPretrained(`${arch}.*`).concat(listPretrained(arch).filter((n) => n === arch));
    throw new VisBackbonesError(`'${cfg.name}' has no pretrained weights${tags.length ? `; tags with weights: ${tags.join(', ')}` : ''}`);
  }
  const entry = getModelEntry(arch);
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (!OWN.has(k)) overrides[k] = v;
  const numClasses = opts.numClasses ?? cfg.numClasses;
  check(Number.isInteger(numClasses) && numClasses >= 0, () => `numClasses must be a non-negative integer, got ${numClasses}`);
  const bytes = await downloadPretrained(cfg, opts);
  // every weight is loaded next, except a fresh classifier of another class count (initialised as usual)
  const build = () => entry.create({ ...overrides, numClasses });
  const model = numClasses === cfg.numClasses || numClasses === 0 ? withoutInit(build) : build();
  try {
    const sd = readSafetensors(bytes);
    try {
      const head = numClasses !== cfg.numClasses ? classifierKeys(cfg, sd) : [];
      const kept: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(sd)) if (!head.includes(k)) kept[k] = v;
      if (head.length && numClasses > 0) {
        // a fresh classifier: every other key loads strictly, the head keeps its initialisation
        const filtered = filterForLoad(model, kept);
        const res = model.loadStateDict(filtered.sd, { strict: false });
        tf.dispose(filtered.created);
        const bad = [...res.missing.filter((k) => !head.includes(k)), ...res.unexpected, ...res.mismatched];
        if (bad.length) throw new VisBackbonesError(`the weights of '${cfg.name}' do not fit ${arch}: ${bad.slice(0, 12).join(', ')}`);
      } else {
        loadTimmWeights(model, kept);
      }
    } finally {
      tf.dispose(Object.values(sd));
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  (model as unknown as { pretrainedCfg: TimmPretrainedCfg }).pretrainedCfg = { ...cfg, numClasses };
  return model;
}

/** The family's checkpoint filter and derived-buffer skipping, as `loadTimmWeights` applies them (non-strict path). */
function filterForLoad(model: Backbone, sd: Record<string, tf.Tensor>): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
  const kept: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(sd)) if (!model.derivedBuffers().some((re) => re.test(k))) kept[k] = v;
  return model.checkpointFilter(kept);
}
