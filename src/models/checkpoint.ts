import * as tf from '@tensorflow/tfjs';
import type { ForwardOptions, Module } from '../layers/module.js';

type EngineWithTape = { state: { activeTape: unknown } };

/**
 * Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; PyTorch's
 * `torch.utils.checkpoint`): `fn(...inputs)` runs without recording its intermediates, and the backward
 * pass runs it again to get the gradients of `inputs` and of the trainable variables of `modules`.
 * Returns `fn`'s output. Only the inputs are kept between the passes, so a training step holds one
 * block's intermediates at a time rather than every block's.
 *
 * Stochastic layers inside `fn` (dropout, drop path) draw new masks in the recompute: use it with
 * their rates at 0 where the gradients must equal the plain run's.
 */
export function checkpoint(fn: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[], modules: Module[]): tf.Tensor {
  const vars: tf.Variable[] = [];
  const seen = new Set<number>();
  for (const m of modules) {
    for (const [, p] of m.namedParameters()) {
      if (p.trainable && p.variable.trainable && !seen.has(p.variable.id)) {
        seen.add(p.variable.id);
        vars.push(p.variable);
      }
    }
  }
  const n = inputs.length;
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xs = args.slice(0, n) as tf.Tensor[];
    save(xs);
    return {
      value: fn(...xs),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const engine = tf.engine() as unknown as ReturnType<typeof tf.engine> & EngineWithTape;
        // a nested `gradients` call starts (and at its end clears) the engine's tape: keep the outer pass's
        const outerTape = engine.state.activeTape;
        try {
          const { value, grads } = engine.gradients(() => fn(...saved), [...saved, ...vars], dy as tf.Tensor, true);
          value.dispose();
          return [...saved, ...vars].map((t, i) => grads[i] ?? tf.zerosLike(t));
        } finally {
          engine.state.activeTape = outerTape;
        }
      },
    };
  });
  return op(...inputs, ...vars);
}

/**
 * `run(x, consts)`, checkpointed (see {@link checkpoint}) when `enabled` and training: timm's
 * `set_grad_checkpointing` applied to one block (or stage) `module`. Tensors `run` reads that do not
 * outlive the forward pass (a mask built for this call) go in `consts`, so the recompute still has them.
 */
export function maybeCheckpoint<T extends tf.Tensor>(
  enabled: boolean,
  opts: ForwardOptions,
  module: Module,
  x: T,
  run: (x: T, consts: tf.Tensor[]) => T,
  consts: tf.Tensor[] = [],
): T {
  if (!enabled || !opts.training) return run(x, consts);
  return checkpoint((t, ...c) => run(t as T, c), [x, ...consts], [module]) as T;
}

/**
 * Turn gradient checkpointing on or off for `model` and every submodule that has
 * `setGradCheckpointing` (the backbones inside a pretraining wrapper, a detector or a segmentor):
 * what the trainer's `gradCheckpointing` option does.
 */
export function setGradCheckpointingDeep(model: Module, enable: boolean): void {
  for (const m of [model, ...model.namedModules().map(([, c]) => c)]) {
    const s = (m as Partial<{ setGradCheckpointing(enable?: boolean): void }>).setGradCheckpointing;
    if (typeof s === 'function') s.call(m, enable);
  }
}
