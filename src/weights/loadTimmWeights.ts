import * as tf from '@tensorflow/tfjs';
import type { Backbone } from '../models/backbone.js';
import { StateDictError, type Module } from '../layers/module.js';
import { VisBackbonesError } from '../errors.js';
import { readSafetensors } from './safetensors.js';
import { guessFamily, keyOverlap } from './guessFamily.js';

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
  /** No console notice when classifier weights of another class count are dropped (fine-tuning). */
  quiet?: boolean;
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
  weights: Record<string, tf.Tensor> | Uint8Array | ArrayBuffer,
  opts: LoadTimmWeightsOptions = {},
): { loaded: string[]; skipped: string[] } {
  if (weights instanceof ArrayBuffer) weights = new Uint8Array(weights);
  checkWeightsArg(weights);
  const owned = weights instanceof Uint8Array;
  const raw = owned ? readSafetensors(weights as Uint8Array) : (weights as Record<string, tf.Tensor>);
  const created: tf.Tensor[] = [];
  const headKept: string[] = [];
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
      const own = new Map(model.namedParameters());
      const out: Record<string, tf.Tensor> = {};
      const dropped: string[] = [];
      for (const [k, v] of Object.entries(sd)) {
        const isHead = model.headPrefixes.some((p) => k.startsWith(p));
        const p = own.get(k);
        if (!p && isHead && (model.numClasses === 0 || model.featuresOnly)) skipped.push(k);
        else if (p && isHead && !sameShape(p.torchShape, v.shape)) {
          // timm's pretrained loading for another num_classes: the classifier keeps its fresh values
          skipped.push(k);
          dropped.push(`${k} [${v.shape.join(', ')}] vs model [${p.torchShape.join(', ')}]`);
          const mine = tf.tidy(() => p.layout.toTorch(p.variable));
          created.push(mine);
          out[k] = mine;
          headKept.push(k);
        } else out[k] = v;
      }
      const ownHead = [...own.keys()].filter((k) => model.headPrefixes.some((pre) => k.startsWith(pre)));
      if (ownHead.length && !Object.keys(out).some((k) => model.headPrefixes.some((pre) => k.startsWith(pre)))) {
        // a checkpoint without a classifier (a pretraining one) into a classifier model: the head keeps its fresh values
        for (const k of ownHead) {
          const p = own.get(k)!;
          const mine = tf.tidy(() => p.layout.toTorch(p.variable));
          created.push(mine);
          out[k] = mine;
          headKept.push(k);
        }
        dropped.push(`the checkpoint has no classifier (${ownHead.join(', ')})`);
      }
      sd = out;
      if (dropped.length && !opts.quiet) {
        console.warn(`loadTimmWeights: classifier not loaded (the head keeps its initial values): ${dropped.join('; ')}`);
      }
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
    let res;
    try {
      res = model.loadStateDict(sd, { strict: opts.strict ?? true });
    } catch (e) {
      if (e instanceof StateDictError) throw explainMismatch(model, e, raw, sd);
      throw e;
    }
    const kept = new Set(headKept);
    return { loaded: res.loaded.filter((k) => !kept.has(k)), skipped: [...skipped, ...res.unexpected, ...res.mismatched] };
  } finally {
    for (const t of created) t.dispose();
    if (owned) for (const t of Object.values(raw)) t.dispose();
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkWeightsArg(w: unknown): void {
  if (w instanceof Uint8Array) return;
  const what = w === null || typeof w !== 'object' ? String(w) : Object.prototype.toString.call(w);
  if (w === null || typeof w !== 'object' || Array.isArray(w) || ArrayBuffer.isView(w)) {
    throw new VisBackbonesError(
      `loadTimmWeights: expected a state dict (key -> tf.Tensor), safetensors bytes (Uint8Array) or an ArrayBuffer, got ${what}`,
    );
  }
  for (const [k, v] of Object.entries(w as Record<string, unknown>)) {
    if (!(v instanceof tf.Tensor)) {
      const got = v === null || typeof v !== 'object' ? String(v) : Object.prototype.toString.call(v);
      throw new VisBackbonesError(
        `loadTimmWeights: state dict entry '${k}' is ${got}, expected a tf.Tensor (pass file bytes as a Uint8Array)`,
      );
    }
  }
}

function listSome(keys: string[], n = 24): string {
  return keys.length <= n ? keys.join(', ') : `${keys.slice(0, n).join(', ')}, ... (${keys.length - n} more)`;
}

/**
 * A strict-loading failure explained: unexpected keys named as in the file (before the checkpoint filter
 * renamed them) and, when most keys differ, the registered family whose keys the checkpoint matches.
 */
function explainMismatch(model: Module, e: StateDictError, raw: Record<string, tf.Tensor>, sd: Record<string, tf.Tensor>): Error {
  const r = e.result;
  const fileName = new Map<tf.Tensor, string>();
  for (const [k, v] of Object.entries(raw)) fileName.set(v, k);
  const unexpected = r.unexpected.map((k) => {
    const f = fileName.get(sd[k]);
    return f && f !== k ? `${f} (as '${k}' after the checkpoint filter)` : (f ?? `${k} (made by the checkpoint filter)`);
  });
  const modelKeys = [...model.namedParameters(), ...model.namedBuffers()].map(([n]) => n);
  const overlap = keyOverlap(Object.keys(raw), modelKeys);
  const family = (model as Backbone).family || model.constructor.name;
  const lines = [`state dict does not match the model '${family}' (strict loading):`];
  let n = 24;
  if (overlap < 0.5 && isBackboneLike(model)) {
    n = 8;
    const g = guessFamily(Object.keys(raw));
    const pct = (v: number) => `${Math.round(v * 100)}%`;
    if (g && g.family !== family && g.overlap > overlap) {
      lines.push(
        `  the checkpoint's keys look like family '${g.family}' (${pct(g.overlap)} key overlap; ${pct(overlap)} with this model): ` +
          `build the model with the family and config the checkpoint was trained with`,
      );
    } else lines.push(`  only ${pct(overlap)} of the key patterns match this model: is it a checkpoint of this family?`);
  }
  if (r.missing.length) lines.push(`  missing keys (${r.missing.length}): ${listSome(r.missing, n)}`);
  if (unexpected.length) lines.push(`  unexpected keys (${unexpected.length}): ${listSome(unexpected, n)}`);
  if (r.mismatched.length) {
    const own = new Map<string, number[]>(model.namedParameters().map(([n, p]) => [n, p.torchShape]));
    for (const [n, b] of model.namedBuffers()) own.set(n, b.variable.shape);
    const detail = r.mismatched.map((k) => `${k}: checkpoint [${sd[k].shape.join(', ')}] vs model [${own.get(k)?.join(', ') ?? '?'}]`);
    lines.push(`  shape mismatches (${detail.length}): ${listSome(detail, n)}`);
  }
  return new StateDictError(lines.join('\n'), r);
}

function isBackboneLike(m: Module): boolean {
  return typeof (m as Backbone).family === 'string';
}
