import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay (default 0.05, the MIM papers' setting). */
  weightDecay?: number;
}

/** One optimised variable with its own learning-rate scale and weight decay. */
export interface ParamGroupEntry {
  name: string;
  variable: tf.Variable;
  /** Multiplier of the learning rate (layer-wise decay); default 1. */
  lrScale?: number;
  /** Weight decay of this variable (0 for norms, biases, tokens); default the optimizer's. */
  weightDecay?: number;
}

/**
 * AdamW (Loshchilov & Hutter 2019, algorithm 2) with per-variable learning-rate scales and weight
 * decays, as PyTorch's `torch.optim.AdamW` with parameter groups: `p <- p - lr*wd*p`, then
 * `p <- p - lr * m_hat / (sqrt(v_hat) + eps)`. The moments are named `exp_avg.<name>` /
 * `exp_avg_sq.<name>` in {@link AdamW.state}.
 */
export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken (PyTorch's `state['step']`). */
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: ParamGroupEntry[],
    opts: AdamWOptions = {},
  ) {
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.05;
    const names = new Set<string>();
    for (const p of params) {
      check(!names.has(p.name), () => `AdamW: parameter name '${p.name}' appears twice`);
      names.add(p.name);
    }
  }

  /** Apply one update with learning rate `lr` for `grads` (keyed by variable name). */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const p of this.params) {
      const g = grads[p.variable.name];
      if (!g) continue;
      if (!this.m.has(p.name)) {
        this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
        this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      }
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      const plr = lr * (p.lrScale ?? 1);
      const wd = p.weightDecay ?? this.weightDecay;
      tf.tidy(() => {
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const denom = tf.add(tf.sqrt(tf.div(v, bc2)), this.eps);
        let next: tf.Tensor = p.variable;
        if (wd) next = tf.mul(next, 1 - plr * wd);
        p.variable.assign(tf.sub(next, tf.mul(tf.div(tf.div(m, bc1), denom), plr)));
      });
    }
  }

  /** The moments (new tensors, caller disposes) keyed `exp_avg.<name>` / `exp_avg_sq.<name>`. */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = {};
    for (const [n, t] of this.m) out[`exp_avg.${n}`] = t.clone();
    for (const [n, t] of this.v) out[`exp_avg_sq.${n}`] = t.clone();
    return out;
  }

  /** Restore moments saved by {@link state} (missing ones start at zero). */
  loadState(state: Record<string, tf.Tensor>, step: number): void {
    this.step = step;
    for (const p of this.params) {
      for (const [key, map] of [
        [`exp_avg.${p.name}`, this.m],
        [`exp_avg_sq.${p.name}`, this.v],
      ] as const) {
        const t = state[key];
        if (!t) continue;
        check(
          t.shape.join(',') === p.variable.shape.join(','),
          () => `optimizer state '${key}' has shape [${t.shape.join(', ')}], the parameter [${p.variable.shape.join(', ')}]`,
        );
        const old = map.get(p.name);
        if (old) old.assign(t);
        else map.set(p.name, tf.variable(t.clone(), false));
      }
    }
  }

  /** Release the moments. */
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
