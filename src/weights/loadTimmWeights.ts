import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../models/backbone.js';
import type { Module } from '../layers/module.js';
import { readSafetensors } from './safetensors.js';

/** Options of {@link loadTimmWeights}. */
export interface LoadTimmWeightsOptions {
  /** Throw one error listing every missing, unexpected and mis-shaped key (default true). */
  strict?: boolean;
  /**
   * Keep only the keys under this prefix, with the prefix stripped (`'backbone.'` of a segmentor
   * checkpoint); the other keys are reported as skipped.
   */
  prefix?: string;
  /** Video Swin / BEVT: the file is a 2-D Swin checkpoint to inflate (also detected from its 4-D patch kernel). */
  inflate2d?: boolean;
}

function isBackbone(m: Module): m is Backbone {
  return typeof (m as Backbone).checkpointFilter === 'function' && typeof (m as Backbone).derivedBuffers === 'function';
}

/**
 * Load a reference (timm / official) checkpoint into a model: the family's checkpoint filter
 * adapts old layouts and other window/image sizes, derived buffers are skipped, classifier keys are
 * skipped for a head-less model, PyTorch layouts are converted. Strict by default.
 */
export function loadTimmWeights(
  model: Module,
  weights: Record<string, tf.Tensor> | Uint8Array,
  opts: LoadTimmWeightsOptions = {},
): { loaded: string[]; skipped: string[] } {
  const owned = weights instanceof Uint8Array;
  const raw = owned ? readSafetensors(weights as Uint8Array) : (weights as Record<string, tf.Tensor>);
  const created: tf.Tensor[] = [];
  try {
    let sd = raw;
    const skipped: string[] = [];
    if (opts.prefix) {
      const pre = opts.prefix;
      sd = {};
      for (const [k, v] of Object.entries(raw)) {
        if (k.startsWith(pre)) sd[k.slice(pre.length)] = v;
        else skipped.push(k);
      }
    }
    if (isBackbone(model)) {
      const kept: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(sd)) {
        if (model.derivedBuffers().some((re) => re.test(k))) skipped.push(k);
        else kept[k] = v;
      }
      const f = model.checkpointFilter(kept);
      sd = f.sd;
      created.push(...f.created);
      const own = new Set(model.namedParameters().map(([n]) => n));
      const out: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(sd)) {
        if (!own.has(k) && model.headPrefixes.some((p) => k.startsWith(p)) && (model.numClasses === 0 || model.featuresOnly)) skipped.push(k);
        else out[k] = v;
      }
      sd = out;
    } else if (typeof (model as { derivedBuffers?: unknown }).derivedBuffers === 'function') {
      // other modules (CLIP towers, CoCa) may also name the config-derived keys a checkpoint holds
      const derived = (model as unknown as { derivedBuffers(): RegExp[] }).derivedBuffers();
      const kept: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(sd)) {
        if (derived.some((re) => re.test(k))) skipped.push(k);
        else kept[k] = v;
      }
      sd = kept;
    }
    const res = model.loadStateDict(sd, { strict: opts.strict ?? true });
    return { loaded: res.loaded, skipped: [...skipped, ...res.unexpected, ...res.mismatched] };
  } finally {
    for (const t of created) t.dispose();
    if (owned) for (const t of Object.values(raw)) t.dispose();
  }
}
