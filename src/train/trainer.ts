import * as tf from '@tensorflow/tfjs';
import { setGradCheckpointingDeep } from '../models/checkpoint.js';
import { check } from '../errors.js';
import { MemoryPeak, memorySpan } from '../backends/memoryMeter.js';
import { Module } from '../layers/module.js';
import { readSafetensorsWithMetadata, writeSafetensors } from '../weights/safetensors.js';
import { SeededRandom } from '../pretrain/rng.js';
import { AdamW, AdamWOptions, ParamGroupEntry } from './adamw.js';
import { layerDecayScales, LayerDecayOptions } from './layerDecay.js';
import { cosineLr } from './lrSchedule.js';
import { noWeightDecayRule } from './weightDecay.js';

export type { MemoryPeak } from '../backends/memoryMeter.js';

/** A dataset the trainer draws batches from: `size` samples, `batch(indices)` builds the tensors of a batch. */
export interface DataSource<B> {
  size: number;
  /** Build the batch for these sample indices; the trainer disposes its tensors after the step. */
  batch(indices: number[]): B;
}

/** A {@link DataSource} over a tensor whose first axis indexes samples (e.g. NHWC images). */
export function tensorDataset(x: tf.Tensor): DataSource<tf.Tensor> {
  return { size: x.shape[0], batch: (idx) => tf.tidy(() => tf.gather(x, tf.tensor1d(idx, 'int32'))) };
}

/** What the loss function and callbacks learn about the current step. */
export interface StepContext {
  /** Global step (0-based) about to be taken. */
  step: number;
  epoch: number;
  /** Learning rate of this step (before layer-wise scaling). */
  lr: number;
  /** A generator seeded from the trainer seed and the step, for per-step masks and noise. */
  rng: SeededRandom;
}

/** Reported after every step. */
export interface StepInfo {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Samples per second of this step (data, forward, backward, update). */
  samplesPerSec: number;
  stepsPerSec: number;
  /**
   * Peak memory of the step: the most bytes tensors held at once (`tf.memory().numBytes`) and, on the
   * wasm backend, the heap size afterwards (its high-water mark).
   */
  memory: MemoryPeak;
}

/** Options of {@link Trainer}. */
export interface TrainerOptions<B> {
  /** The module that is trained and checkpointed (its state dict). */
  model: Module;
  /** The loss of one batch; runs inside `tf.tidy`. */
  loss: (batch: B, ctx: StepContext) => tf.Scalar;
  /** Names of the parameters to optimise (default: every trainable parameter of `model`). */
  params?: string[];
  /** Peak learning rate. */
  lr: number;
  /** Warm-up steps of the cosine schedule (default 0). */
  warmupSteps?: number;
  /** Floor of the cosine schedule (default 0). */
  minLr?: number;
  /** Steps of the schedule (default: as many as {@link Trainer.fit} runs). */
  totalSteps?: number;
  /** A constant learning rate instead of the cosine schedule. */
  constantLr?: boolean;
  /** AdamW settings (weight decay default 0.05). */
  optimizer?: AdamWOptions;
  /**
   * Parameters excluded from weight decay (default {@link defaultNoWeightDecay} with the model's
   * `noWeightDecay()` patterns: rank <= 1, biases, tokens, position embeddings, bias tables, logit scales).
   */
  noWeightDecay?: (name: string, shape: number[]) => boolean;
  /**
   * Layer-wise learning-rate decay (fine-tuning; BEiT, Bao et al. 2022, sec. 2.6), with the depths from the
   * backbone's `groupMatcher()` ({@link layerDecayAssignments}): the decay, or the decay with a matcher.
   */
  layerDecay?: number | LayerDecayOptions;
  /** Clip the global gradient norm to this value (PyTorch's `clip_grad_norm_`). */
  clipGradNorm?: number;
  /**
   * Turn gradient checkpointing on (or off) in the model and every submodule that offers it (timm's
   * `set_grad_checkpointing`): blocks are recomputed in the backward pass, the same gradients in less memory.
   */
  gradCheckpointing?: boolean;
  /**
   * Split every batch into micro-batches of this many samples and accumulate their gradients before
   * the single update (MAE's `accum_iter`): the same step in less memory. Each micro-batch's loss is
   * weighted by its share of the batch, so a loss that is a per-sample mean gives the full-batch
   * gradient. Needs batches that are a tensor, an array or a record of tensors (split on axis 0).
   */
  microBatchSize?: number;
  /** Seed of the data order and of `ctx.rng`. */
  seed?: number;
  /** Called after every step. */
  onStep?: (info: StepInfo) => void;
  /** Write a checkpoint every this many steps (and at the end of `fit`) through `onCheckpoint`. */
  checkpointEvery?: number;
  /** Receives each checkpoint as safetensors bytes, with the step it was taken at. */
  onCheckpoint?: (bytes: Uint8Array, step: number) => void;
}

const OPT_PREFIX = 'optimizer.';

/** Split a batch (a tensor, an array or a record of tensors) on axis 0 into chunks of `size` samples. */
function splitBatch<B>(batch: B, size: number): { part: B; size: number; owned: boolean }[] {
  const leaves: tf.Tensor[] =
    batch instanceof tf.Tensor
      ? [batch]
      : Array.isArray(batch)
        ? (batch as tf.Tensor[])
        : Object.values(batch as Record<string, tf.Tensor>);
  check(
    leaves.length > 0 && leaves.every((t) => t instanceof tf.Tensor),
    'microBatchSize needs batches that are a tensor, an array or a record of tensors',
  );
  const n = leaves[0].shape[0];
  check(
    leaves.every((t) => t.shape[0] === n),
    () => `every tensor of a batch must have the same first dimension to be split, got [${leaves.map((t) => t.shape[0]).join(', ')}]`,
  );
  if (n <= size) return [{ part: batch, size: n, owned: false }];
  const out: { part: B; size: number; owned: boolean }[] = [];
  for (let s = 0; s < n; s += size) {
    const k = Math.min(size, n - s);
    const cut = (t: tf.Tensor) => t.slice(s, k);
    const part =
      batch instanceof tf.Tensor
        ? cut(batch)
        : Array.isArray(batch)
          ? batch.map(cut)
          : Object.fromEntries(Object.entries(batch as Record<string, tf.Tensor>).map(([key, t]) => [key, cut(t)]));
    out.push({ part: part as B, size: k, owned: true });
  }
  return out;
}

/**
 * A small training loop for pretraining and fine-tuning: seeded data order (a new permutation per
 * epoch, incomplete last batch dropped), AdamW over an explicit parameter list, one `tf.tidy` per step,
 * linear warm-up + cosine learning rate, optional layer-wise learning-rate decay and global gradient-norm
 * clipping, a per-step callback with loss and throughput, and checkpoints (model state dict + optimizer
 * moments + step) written as safetensors.
 */
export class Trainer<B = tf.Tensor> {
  readonly optimizer: AdamW;
  /** Global step (number of updates done). */
  step = 0;
  private readonly names: string[];
  private readonly opts: TrainerOptions<B>;

  constructor(opts: TrainerOptions<B>) {
    this.opts = opts;
    check(opts.lr > 0, () => `lr must be > 0, got ${opts.lr}`);
    if (opts.clipGradNorm !== undefined) check(opts.clipGradNorm > 0, () => `clipGradNorm must be > 0, got ${opts.clipGradNorm}`);
    if (opts.microBatchSize !== undefined)
      check(
        Number.isInteger(opts.microBatchSize) && opts.microBatchSize > 0,
        () => `microBatchSize must be a positive integer, got ${opts.microBatchSize}`,
      );
    if (opts.gradCheckpointing !== undefined) setGradCheckpointingDeep(opts.model, opts.gradCheckpointing);
    const all = new Map(opts.model.namedParameters());
    const names = opts.params ?? [...all].filter(([, p]) => p.trainable).map(([n]) => n);
    for (const n of names) check(all.has(n), () => `parameter '${n}' is not a parameter of the model`);
    check(names.length > 0, 'the trainer has no parameters to optimise');
    this.names = names;
    const ld = typeof opts.layerDecay === 'number' ? { decay: opts.layerDecay } : opts.layerDecay;
    const scales = ld ? layerDecayScales(opts.model, ld) : null;
    const noWd = opts.noWeightDecay ?? noWeightDecayRule(opts.model);
    const entries: ParamGroupEntry[] = names.map((n) => {
      const v = all.get(n)!.variable;
      return { name: n, variable: v, lrScale: scales?.get(n) ?? 1, weightDecay: noWd(n, v.shape) ? 0 : undefined };
    });
    this.optimizer = new AdamW(entries, opts.optimizer);
  }

  /** The variables being optimised, in parameter order. */
  get variables(): tf.Variable[] {
    return this.optimizer.params.map((p) => p.variable);
  }

  /** Learning rate of a step under the configured schedule. */
  lrAt(step: number, totalSteps: number): number {
    if (this.opts.constantLr) return this.opts.lr;
    return cosineLr(step, {
      baseLr: this.opts.lr,
      totalSteps: this.opts.totalSteps ?? totalSteps,
      warmupSteps: this.opts.warmupSteps,
      minLr: this.opts.minLr,
    });
  }

  /** One optimisation step on a batch; returns what {@link TrainerOptions.onStep} receives. */
  trainStep(batch: B, ctx: Omit<StepContext, 'lr' | 'rng'> & { totalSteps: number; batchSize: number }): StepInfo {
    const t0 = performance.now();
    const mem = memorySpan();
    const lr = this.lrAt(this.step, ctx.totalSteps);
    const rng = new SeededRandom(((this.opts.seed ?? 0) * 1_000_003 + this.step * 7919) >>> 0);
    const full: StepContext = { step: this.step, epoch: ctx.epoch, lr, rng };
    const vars = this.variables;
    const parts = this.opts.microBatchSize ? splitBatch(batch, this.opts.microBatchSize) : [{ part: batch, size: 1, owned: false }];
    const total = parts.reduce((a, p) => a + p.size, 0);
    let grads: Record<string, tf.Tensor> = {};
    let loss = 0;
    try {
      for (const { part, size } of parts) {
        const w = size / total;
        const next = tf.tidy(() => {
          const r = tf.variableGrads(() => this.opts.loss(part, full), vars);
          loss += r.value.dataSync()[0] * w;
          return Object.fromEntries(
            Object.entries(r.grads).map(([k, g]) => [k, grads[k] ? tf.add(grads[k], tf.mul(g, w)) : parts.length > 1 ? tf.mul(g, w) : g]),
          );
        });
        tf.dispose(Object.values(grads));
        grads = next;
      }
    } finally {
      for (const p of parts) if (p.owned) tf.dispose(p.part as unknown as tf.TensorContainer);
    }
    const gradNorm = tf.tidy(() => {
      const sq = Object.values(grads).map((g) => tf.sum(tf.square(g)));
      const norm = tf.sqrt(sq.length ? tf.addN(sq) : tf.scalar(0)).dataSync()[0];
      let use = grads;
      const clip = this.opts.clipGradNorm;
      if (clip !== undefined && norm > clip) {
        const f = clip / (norm + 1e-6);
        use = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, f)]));
      }
      this.optimizer.apply(use, lr);
      return norm;
    });
    tf.dispose(Object.values(grads));
    this.step += 1;
    const dt = (performance.now() - t0) / 1000;
    return {
      step: this.step - 1,
      epoch: ctx.epoch,
      loss,
      lr,
      gradNorm,
      samplesPerSec: ctx.batchSize / dt,
      stepsPerSec: 1 / dt,
      memory: mem.stop(),
    };
  }

  /**
   * Train for `epochs` passes over `data` in batches of `batchSize` (seeded order). Returns the
   * per-step infos.
   */
  fit(data: DataSource<B>, opts: { epochs: number; batchSize: number; maxSteps?: number }): StepInfo[] {
    check(Number.isInteger(opts.batchSize) && opts.batchSize > 0, () => `batchSize must be a positive integer, got ${opts.batchSize}`);
    check(data.size >= opts.batchSize, () => `the dataset has ${data.size} samples, fewer than one batch of ${opts.batchSize}`);
    const perEpoch = Math.floor(data.size / opts.batchSize);
    const totalSteps = Math.min(opts.maxSteps ?? Infinity, perEpoch * opts.epochs);
    const rng = new SeededRandom(this.opts.seed ?? 0);
    const infos: StepInfo[] = [];
    let done = 0;
    for (let epoch = 0; epoch < opts.epochs && done < totalSteps; epoch++) {
      const order = rng.permutation(data.size);
      for (let s = 0; s < perEpoch && done < totalSteps; s++) {
        const idx = Array.from(order.subarray(s * opts.batchSize, (s + 1) * opts.batchSize));
        const batch = data.batch(idx);
        let info: StepInfo;
        try {
          info = this.trainStep(batch, { step: this.step, epoch, totalSteps, batchSize: opts.batchSize });
        } finally {
          tf.dispose(batch as unknown as tf.TensorContainer);
        }
        infos.push(info);
        done++;
        this.opts.onStep?.(info);
        if (this.opts.checkpointEvery && this.opts.onCheckpoint && this.step % this.opts.checkpointEvery === 0)
          this.opts.onCheckpoint(this.checkpoint(), this.step);
      }
    }
    if (this.opts.checkpointEvery && this.opts.onCheckpoint && this.step % this.opts.checkpointEvery !== 0)
      this.opts.onCheckpoint(this.checkpoint(), this.step);
    return infos;
  }

  /** A safetensors checkpoint: the model's state dict, the optimizer moments (`optimizer.*`) and the step (metadata). */
  checkpoint(): Uint8Array {
    const sd = this.opts.model.stateDict();
    const st = this.optimizer.state();
    const all: Record<string, tf.Tensor> = { ...sd };
    for (const [k, v] of Object.entries(st)) all[OPT_PREFIX + k] = v;
    try {
      return writeSafetensors(all, { format: 'visbackbones-trainer', step: String(this.step), params: JSON.stringify(this.names) });
    } finally {
      tf.dispose([...Object.values(sd), ...Object.values(st)]);
    }
  }

  /** Restore a {@link checkpoint}: model weights (strict), optimizer moments and step. */
  loadCheckpoint(bytes: Uint8Array): void {
    const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
    try {
      const model: Record<string, tf.Tensor> = {};
      const opt: Record<string, tf.Tensor> = {};
      for (const [k, v] of Object.entries(tensors)) {
        if (k.startsWith(OPT_PREFIX)) opt[k.slice(OPT_PREFIX.length)] = v;
        else model[k] = v;
      }
      this.opts.model.loadStateDict(model);
      const step = Number(metadata.step ?? 0);
      this.optimizer.loadState(opt, step);
      this.step = step;
    } finally {
      tf.dispose(Object.values(tensors));
    }
  }

  /** Release the optimizer state (not the model). */
  dispose(): void {
    this.optimizer.dispose();
  }
}
