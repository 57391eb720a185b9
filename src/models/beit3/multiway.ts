import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Module } from '../../layers/module.js';

/**
 * torchscale's `MultiwayNetwork` (Wang et al. 2022, BEiT-3 sec. 2.1): two experts of the same module,
 * `A` for vision tokens and `B` for language tokens. The split position chooses them along the token axis:
 * -1 = every token through `A`, 0 = every token through `B`, `s > 0` = tokens `[0, s)` through `A` and
 * `[s, T)` through `B`, outputs concatenated. State-dict keys `A.*`, `B.*`.
 */
export class MultiwayNetwork<M extends Module> extends Module {
  readonly A: M;
  readonly B: M;
  constructor(make: () => M) {
    super();
    this.A = this.addModule('A', make());
    this.B = this.addModule('B', make());
  }

  /** Not called directly: use {@link runExperts}, which knows how each expert is applied. */
  forward(): never {
    throw new Error('MultiwayNetwork is applied through runExperts(experts, x, split, fn)');
  }

  /** `fn(expert, tokens)` on `x` `[B, T, ...]` split at `split` along axis 1. */
  apply(x: tf.Tensor, split: number, fn: (m: M, x: tf.Tensor) => tf.Tensor): tf.Tensor {
    if (split === -1) return fn(this.A, x);
    if (split === 0) return fn(this.B, x);
    const t = x.shape[1] as number;
    check(Number.isInteger(split) && split > 0 && split < t, () => `multiway split position ${split} must be -1, 0 or inside (0, ${t})`);
    return tf.tidy(() => {
      const [xa, xb] = tf.split(x, [split, t - split], 1);
      return tf.concat([fn(this.A, xa), fn(this.B, xb)], 1);
    });
  }
}

/** A multiway module or, without `multiway`, the single module that torchscale's `MultiwayWrapper` returns. */
export type Experts<M extends Module> = M | MultiwayNetwork<M>;

/** torchscale's `MultiwayWrapper`: two experts when `multiway`, else the module itself (keys without `A.` / `B.`). */
export function multiwayWrapper<M extends Module>(multiway: boolean, make: () => M): Experts<M> {
  return multiway ? new MultiwayNetwork(make) : make();
}

/** Apply `fn` with the expert(s) chosen by `split` (a single module ignores the split). */
export function runExperts<M extends Module>(e: Experts<M>, x: tf.Tensor, split: number, fn: (m: M, x: tf.Tensor) => tf.Tensor): tf.Tensor {
  return e instanceof MultiwayNetwork ? e.apply(x, split, fn) : fn(e, x);
}
