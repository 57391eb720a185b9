import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { ActivationName, getActivation } from '../layers/activations.js';
import { Linear } from '../layers/linear.js';
import { Module } from '../layers/module.js';
import { isTensor } from '../heads/featureChecks.js';
import type { Backbone } from '../models/backbone.js';

/** Options of {@link BottleneckAdapter} / {@link stageAdapters}. */
export interface AdapterOptions {
  /** Bottleneck width = channels / reduction (default 4), at least 1. */
  reduction?: number;
  /** Activation between the projections (default 'gelu'). */
  act?: ActivationName;
  /** Std of the up-projection's init; small so an adapted backbone starts close to the frozen one (default 1e-3). */
  upInitStd?: number;
}

/**
 * A bottleneck adapter (Houlsby et al. 2019, sec. 2.1 and Fig. 2): `x + up(act(down(x)))` on the channel
 * (last) axis, so it applies to NHWC maps and `[B, L, C]` tokens alike. The up-projection starts near
 * zero (near-identity init). State-dict keys `fc1.*` (down) and `fc2.*` (up).
 */
export class BottleneckAdapter extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly dim: number,
    readonly opts: AdapterOptions = {},
  ) {
    super();
    this.config = { dim, ...opts };
    const r = opts.reduction ?? 4;
    check(r > 0, () => `adapter reduction must be positive, got ${r}`);
    const hidden = Math.max(1, Math.round(dim / r));
    this.fc1 = this.addModule('fc1', new Linear(dim, hidden));
    this.fc2 = this.addModule('fc2', new Linear(hidden, dim, { initStd: opts.upInitStd ?? 1e-3 }));
    this.act = getActivation(opts.act ?? 'gelu');
  }
  forward(x: tf.Tensor): tf.Tensor {
    const c = x.shape[x.rank - 1];
    check(c === this.dim, () => `adapter expected ${this.dim} channels in the last axis, got ${c} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => tf.add(x, this.fc2.forward(this.act(this.fc1.forward(x)))));
  }
}

/**
 * One {@link BottleneckAdapter} per feature level of a backbone (multi-scale: each at its stage's width),
 * inserted after each stage of a (frozen) backbone by {@link runWithAdapters}: the adapted output of stage
 * `i` is what stage `i + 1` receives and what the feature list returns. Keys `<level>.fc1.*`, `<level>.fc2.*`.
 */
export class StageAdapters extends Module {
  readonly adapters: BottleneckAdapter[] = [];
  /** State-dict prefix of the stage module each adapter follows (the backbone's `featureInfo[i].module`). */
  readonly modules: string[];
  readonly channels: number[];
  constructor(
    levels: { numChs: number; module: string }[],
    readonly opts: AdapterOptions = {},
  ) {
    super();
    this.config = { levels, ...opts };
    check(levels.length > 0, () => 'stageAdapters: the backbone has no feature levels');
    this.modules = levels.map((l) => l.module);
    this.channels = levels.map((l) => l.numChs);
    levels.forEach((l, i) => this.adapters.push(this.addModule(String(i), new BottleneckAdapter(l.numChs, opts))));
  }
  /** Not callable on its own: the adapters run inside the backbone (see {@link runWithAdapters}). */
  forward(): never {
    throw new VisBackbonesError(
      'StageAdapters run inside a backbone: use runWithAdapters(backbone, adapters, fn) or attach(backbone, head, { adapters })',
    );
  }
}

/** Build {@link StageAdapters} for every feature level of `backbone` (its `featureInfo`). */
export function stageAdapters(backbone: Backbone, opts: AdapterOptions = {}): StageAdapters {
  return new StageAdapters(backbone.featureInfo, opts);
}

/** Adapt a stage's output (a tensor, or a tuple whose first entry is the tensor); the replaced tensor is disposed unless it was an input. */
function adaptOutput(out: unknown, a: BottleneckAdapter, where: string, inputs: unknown[]): unknown {
  if (isTensor(out)) {
    const y = a.forward(out);
    if (!inputs.includes(out)) out.dispose();
    return y;
  }
  if (Array.isArray(out) && isTensor(out[0])) {
    const y = a.forward(out[0]);
    if (!inputs.includes(out[0])) (out[0] as tf.Tensor).dispose();
    return [y, ...out.slice(1)];
  }
  throw new VisBackbonesError(
    `adapter after '${where}': the stage returned ${Object.prototype.toString.call(out)}, expected a tensor whose last axis has ${a.dim} channels`,
  );
}

/**
 * Run `fn` (a forward of `backbone`) with the adapters inserted after the stage modules named by
 * `adapters.modules`: each stage's output passes through its adapter before the next stage sees it.
 * The stages are restored afterwards. Throws if a stage up to `lastLevel` never ran (a backbone whose
 * forward bypasses that module), so an adapter can never be skipped silently.
 */
export function runWithAdapters<T>(backbone: Module, adapters: StageAdapters, fn: () => T, lastLevel = adapters.adapters.length - 1): T {
  const calls = adapters.adapters.map(() => 0);
  const patched: [Module, unknown][] = [];
  try {
    adapters.modules.forEach((path, i) => {
      const m = backbone.getSubmodule(path);
      const own = Object.prototype.hasOwnProperty.call(m, 'forward') ? (m as unknown as { forward: unknown }).forward : undefined;
      const orig = m.forward.bind(m) as (...a: unknown[]) => unknown;
      patched.push([m, own]);
      (m as unknown as { forward: (...a: unknown[]) => unknown }).forward = (...args: unknown[]) => {
        calls[i] += 1;
        return adaptOutput(orig(...args), adapters.adapters[i], path, args);
      };
    });
    const out = fn();
    const missed = calls.map((c, i) => (c === 0 && i <= lastLevel ? adapters.modules[i] : null)).filter((p) => p !== null);
    if (missed.length) {
      tf.dispose(out as unknown as tf.TensorContainer);
      throw new VisBackbonesError(
        `adapters were not applied: the backbone's forward never called the stage module(s) ${missed.join(', ')}`,
      );
    }
    return out;
  } finally {
    for (const [m, own] of patched) {
      if (own === undefined) delete (m as unknown as { forward?: unknown }).forward;
      else (m as unknown as { forward: unknown }).forward = own;
    }
  }
}
