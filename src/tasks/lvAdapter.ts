import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { pixelCrossEntropy } from '../heads/pixelCrossEntropy.js';
import { SegmentationHead } from '../heads/segmentationHead.js';
import { ClassifierHead } from '../layers/classifier.js';
import { normal } from '../layers/init.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { l2Normalize } from '../layers/l2Normalize.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, Parameter } from '../layers/module.js';
import { MultiheadAttention } from '../layers/multiheadAttention.js';
import { LayerNorm } from '../layers/norm.js';
import type { Backbone } from '../models/backbone.js';
import { AdapterOptions, runWithAdapters, StageAdapters } from '../transfer/adapter.js';
import { freeze } from '../transfer/freeze.js';

/**
 * What an {@link LvAdapter} needs of its text tower (structurally: a CLIP text transformer such as
 * `clipTextTransformer(...)` fits): a Module that encodes token ids with learnable context tokens
 * inserted after SOT into pooled, projected text features.
 */
export interface PromptTextEncoder extends Module {
  /** Positions the tower accepts (prompt tokens plus context tokens). */
  readonly contextLength: number;
  /** Width of the token embeddings (= of the context tokens). */
  readonly width: number;
  /** Width of the output text features. */
  readonly outputDim: number;
  /** token ids `[K, L]` int32, context `[nCtx, width]` (or `[K, nCtx, width]`) -> text features `[K, outputDim]`. */
  forwardWithContext(text: tf.Tensor, context: tf.Tensor, opts?: { training?: boolean }): tf.Tensor2D;
}

/** One task of an {@link LvAdapter}: its head and its class-name prompts. */
export interface LvTask {
  /** Key of the task in the outputs, the losses and the state dict (`heads.<name>.*`, `prompts.<name>`). */
  name: string;
  /** 'segmentation': per-pixel logits from every level; 'classification': logits from the pooled last level. */
  type: 'segmentation' | 'classification';
  /**
   * The class names tokenized for the CLIP text tower, int32 `[K, L]` (`clipTokenizer(...).tokenize(names, L)`:
   * SOT, name ids, EOT, zero padding), with `L + nCtx <= contextLength`. K is the task's class count. Copied.
   */
  classTokens: tf.Tensor;
}

/** Options of {@link lvAdapter}. */
export interface LvAdapterOptions<T extends PromptTextEncoder = PromptTextEncoder> {
  /** The visual backbone; frozen by the constructor (the adapters train instead). */
  backbone: Backbone;
  /** The CLIP text tower that encodes the task prompts; frozen by the constructor. */
  textEncoder: T;
  /** The tasks trained together (at least one; names unique). */
  tasks: LvTask[];
  /** Learnable context tokens per task prompt (default 8; DenseCLIP uses 8 for its class prompts). */
  nCtx?: number;
  /** Width of the language-to-vision cross-attention (default 64). */
  attnDim?: number;
  /** Heads of the cross-attention (default 4). */
  attnHeads?: number;
  /** Initial value of the per-channel scale of the language-aware context (default 1e-4, DenseCLIP's `gamma`). */
  gammaInit?: number;
  /** The bottleneck adapters after each backbone stage (reduction, activation, init). */
  adapter?: AdapterOptions;
  /** Temperature of the visual-text alignment logits (default 0.07, CLIP's initial). */
  tau?: number;
  /** Level whose pixels a segmentation task aligns with its class embeddings (default the last level). */
  alignLevel?: number;
  /** Weight of the alignment losses in `loss` (default 1). */
  alignmentLossWeight?: number;
  /** Ignored label of segmentation targets (default 255). */
  ignoreIndex?: number;
}

/** What {@link LvAdapter.forward} returns. */
export interface LvAdapterOutput {
  /** Per task: segmentation logits NHWC `[B, H, W, K]` (input size) or classification logits `[B, K]`. */
  logits: Record<string, tf.Tensor>;
  /** Per task: alignment logits, `[B, h, w, K]` pixel-text scores at `alignLevel` or `[B, K]` image-text scores (over tau). */
  alignment: Record<string, tf.Tensor>;
  /** Per task: its prompts' text features `[K, D]` (L2-normalised). */
  textEmbeddings: Record<string, tf.Tensor2D>;
  /** The language-aware multi-scale features NHWC, one per backbone level. */
  features: tf.Tensor4D[];
}

/** What {@link LvAdapter.loss} returns. */
export interface LvAdapterLosses {
  /** Sum of the task losses plus `alignmentLossWeight` times the sum of the alignment losses. */
  loss: tf.Scalar;
  /** Per task: cross-entropy of the head (pixel cross-entropy for segmentation). */
  taskLosses: Record<string, tf.Scalar>;
  /** Per task: cross-entropy of the alignment logits. */
  alignmentLosses: Record<string, tf.Scalar>;
  /** Sum of the alignment losses (unweighted). */
  alignmentLoss: tf.Scalar;
}

/**
 * The language-to-vision adapter of one level: the level's pixels attend to the text features of every task
 * prompt, and the result, scaled per channel by `gamma` (starting near zero), is added back:
 * `f + gamma * out_proj(attn(q_proj(ln_q(f)), ln_kv(T), ln_kv(T)))`. Keys `ln_q`, `q_proj`, `ln_kv`, `attn.*`
 * (PyTorch `nn.MultiheadAttention` with `kdim = vdim = D`), `out_proj`, `gamma`.
 */
export class LanguageToVisionAdapter extends Module {
  readonly lnQ: LayerNorm;
  readonly qProj: Linear;
  readonly lnKv: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly outProj: Linear;
  readonly gamma: Parameter;
  constructor(
    readonly channels: number,
    readonly textDim: number,
    attnDim: number,
    heads: number,
    gammaInit: number,
  ) {
    super();
    this.config = { channels, textDim, attnDim, heads, gammaInit };
    this.lnQ = this.addModule('ln_q', new LayerNorm(channels));
    this.qProj = this.addModule('q_proj', new Linear(channels, attnDim));
    this.lnKv = this.addModule('ln_kv', new LayerNorm(textDim));
    this.attn = this.addModule('attn', new MultiheadAttention(attnDim, heads, { kdim: textDim, vdim: textDim }));
    this.outProj = this.addModule('out_proj', new Linear(attnDim, channels));
    this.gamma = this.addParameter('gamma', tf.fill([channels], gammaInit));
  }

  /** `f` NHWC `[B, h, w, C]`, `text` `[K, D]` -> NHWC `[B, h, w, C]`. */
  forward(f: tf.Tensor, opts: { text: tf.Tensor } & ForwardOptions): tf.Tensor4D {
    const [b, h, w, c] = f.shape as [number, number, number, number];
    return tf.tidy(() => {
      const q = this.qProj.forward(this.lnQ.forward(f.reshape([b, h * w, c])));
      const kv = tf.tile(this.lnKv.forward(opts.text).expandDims(0), [b, 1, 1]);
      const a = this.attn.forward(q, { key: kv, value: kv, training: opts.training });
      return tf.add(f, tf.mul(this.outProj.forward(a), this.gamma.value).reshape([b, h, w, c])) as tf.Tensor4D;
    });
  }
}

/** A Module holding named children (state-dict prefix `<name>.`). */
class NamedModules<M extends Module> extends Module {
  readonly items = new Map<string, M>();
  add(name: string, m: M): M {
    this.items.set(name, this.addModule(name, m));
    return m;
  }
  forward(): never {
    throw new VisBackbonesError('a container of task modules is not callable');
  }
}

/** A Module holding one parameter per task (state-dict keys `<name>`). */
class NamedParameters extends Module {
  readonly items = new Map<string, Parameter>();
  add(name: string, t: tf.Tensor): Parameter {
    const p = this.addParameter(name, t);
    this.items.set(name, p);
    return p;
  }
  forward(): never {
    throw new VisBackbonesError('a container of prompt contexts is not callable');
  }
}

/**
 * Language-guided multi-task adapters (LV-Adapter; Liang et al. 2022, "Effective Adaptation in Multi-Task
 * Co-Training for Unified Autonomous Driving", sec. 3.3) on a frozen backbone: bottleneck adapters after every
 * backbone stage (the multi-scale adapters of its pretrain-adapt-finetune stage), task prompts with learnable
 * context tokens encoded by a frozen CLIP text tower, a cross-attention from each adapted level to the prompts'
 * text features (language-aware contexts), several task heads trained together, and a visual-text alignment
 * loss (pixel-text scores for segmentation, image-text scores for classification). No public code: the
 * choices the paper leaves open are documented in docs/guides/lv-adapter.md.
 *
 * Keys: `backbone.*` and `text_encoder.*` (frozen), `adapters.<level>.*`, `prompts.<task>` `[nCtx, width]`,
 * `l2v.<level>.*`, `align_proj.<task>.*`, `heads.<task>.*`.
 */
export class LvAdapter<T extends PromptTextEncoder = PromptTextEncoder> extends Module {
  readonly backbone: Backbone;
  readonly textEncoder: T;
  readonly adapters: StageAdapters;
  readonly prompts: NamedParameters;
  readonly l2v: LanguageToVisionAdapter[] = [];
  readonly alignProj: NamedModules<Linear>;
  readonly heads: NamedModules<SegmentationHead | ClassifierHead>;
  readonly tasks: { name: string; type: LvTask['type']; numClasses: number; ids: Int32Array; shape: [number, number] }[];
  readonly nCtx: number;
  readonly tau: number;
  readonly alignLevel: number;
  readonly alignmentLossWeight: number;
  readonly ignoreIndex: number;

  constructor(opts: LvAdapterOptions<T>) {
    super();
    const { backbone, textEncoder, tasks } = opts;
    check(Array.isArray(tasks) && tasks.length > 0, () => 'lvAdapter: tasks must be a non-empty list');
    const names = tasks.map((t) => t.name);
    check(
      names.every((n) => typeof n === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(n)) && new Set(names).size === names.length,
      () => `lvAdapter: task names must be unique identifiers, got ${JSON.stringify(names)}`,
    );
    this.nCtx = opts.nCtx ?? 8;
    check(Number.isInteger(this.nCtx) && this.nCtx >= 0, () => `lvAdapter: nCtx must be a non-negative integer, got ${opts.nCtx}`);
    this.tau = opts.tau ?? 0.07;
    check(this.tau > 0, () => `lvAdapter: tau must be positive, got ${opts.tau}`);
    const info = backbone.featureInfo;
    const levels = info.length;
    const al = opts.alignLevel ?? levels - 1;
    this.alignLevel = al < 0 ? levels + al : al;
    check(
      Number.isInteger(al) && this.alignLevel >= 0 && this.alignLevel < levels,
      () => `lvAdapter: alignLevel ${al} is out of range for the backbone's ${levels} levels`,
    );
    this.alignmentLossWeight = opts.alignmentLossWeight ?? 1;
    this.ignoreIndex = opts.ignoreIndex ?? 255;
    this.tasks = tasks.map((t) => {
      check(
        t.type === 'segmentation' || t.type === 'classification',
        () => `lvAdapter: task '${t.name}' type must be 'segmentation' or 'classification', got ${JSON.stringify(t.type)}`,
      );
      const ct = t.classTokens;
      check(
        ct instanceof tf.Tensor && ct.rank === 2 && ct.dtype === 'int32' && ct.shape[0] > 0,
        () =>
          `lvAdapter: task '${t.name}' classTokens must be int32 token ids [K, L], got ${ct instanceof tf.Tensor ? `${ct.dtype} [${ct.shape.join(', ')}]` : String(ct)}`,
      );
      check(
        (ct.shape[1] as number) + this.nCtx <= textEncoder.contextLength,
        () =>
          `lvAdapter: task '${t.name}' prompts of ${ct.shape[1]} tokens plus ${this.nCtx} context tokens exceed the text tower's contextLength ${textEncoder.contextLength}`,
      );
      return {
        name: t.name,
        type: t.type,
        numClasses: ct.shape[0],
        ids: Int32Array.from(ct.dataSync() as Int32Array),
        shape: ct.shape as [number, number],
      };
    });
    const attnDim = opts.attnDim ?? 64;
    const heads = opts.attnHeads ?? 4;
    const gammaInit = opts.gammaInit ?? 1e-4;
    const d = textEncoder.outputDim;
    this.config = {
      tasks: this.tasks.map((t) => ({ name: t.name, type: t.type, numClasses: t.numClasses, promptLength: t.shape[1] })),
      nCtx: this.nCtx,
      attnDim,
      attnHeads: heads,
      gammaInit,
      adapter: opts.adapter ?? {},
      tau: this.tau,
      alignLevel: this.alignLevel,
      alignmentLossWeight: this.alignmentLossWeight,
      ignoreIndex: this.ignoreIndex,
    };
    this.backbone = this.addModule('backbone', backbone);
    this.textEncoder = this.addModule('text_encoder', textEncoder);
    freeze(backbone);
    freeze(textEncoder);
    this.adapters = this.addModule('adapters', new StageAdapters(info, opts.adapter ?? {}));
    this.prompts = this.addModule('prompts', new NamedParameters());
    for (const t of this.tasks) this.prompts.add(t.name, normal([this.nCtx, textEncoder.width], 0.02));
    const l2v = this.addModule('l2v', new NamedModules<LanguageToVisionAdapter>());
    info.forEach((l, i) => this.l2v.push(l2v.add(String(i), new LanguageToVisionAdapter(l.numChs, d, attnDim, heads, gammaInit))));
    this.alignProj = this.addModule('align_proj', new NamedModules<Linear>());
    this.heads = this.addModule('heads', new NamedModules<SegmentationHead | ClassifierHead>());
    const last = info[levels - 1].numChs;
    for (const t of this.tasks) {
      const alignChs = t.type === 'segmentation' ? info[this.alignLevel].numChs : last;
      this.alignProj.add(t.name, new Linear(alignChs, d));
      this.heads.add(
        t.name,
        t.type === 'segmentation'
          ? new SegmentationHead({ inChannels: info.map((l) => l.numChs), numClasses: t.numClasses })
          : new ClassifierHead({ inChans: last, numClasses: t.numClasses, poolType: 'avg' }),
      );
    }
  }

  /** The prompts' text features per task `[K, D]`, L2-normalised (the text tower frozen, the contexts learnable). */
  encodePrompts(): Record<string, tf.Tensor2D> {
    return tf.tidy(() => {
      const out: Record<string, tf.Tensor2D> = {};
      for (const t of this.tasks) {
        const ids = tf.tensor2d(t.ids, t.shape, 'int32');
        out[t.name] = l2Normalize(this.textEncoder.forwardWithContext(ids, this.prompts.items.get(t.name)!.value)) as tf.Tensor2D;
      }
      return out;
    });
  }

  /** The adapted multi-scale features of the frozen backbone (eval mode), one NHWC map per level. */
  private adaptedFeatures(x: tf.Tensor): tf.Tensor4D[] {
    const indices = this.backbone.featureInfo.map((_, i) => i);
    return runWithAdapters(this.backbone, this.adapters, () =>
      this.backbone.forwardIntermediates(x, { indices, intermediatesOnly: true, stopEarly: true, training: false }),
    );
  }

  /** `x` NHWC images -> every task's logits, the alignment logits, the prompts' text features and the features. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): LvAdapterOutput {
    check(x instanceof tf.Tensor && x.rank === 4, () => `lvAdapter: expected NHWC images [B, H, W, C], got ${String(x)}`);
    return tf.tidy(() => {
      const textEmbeddings = this.encodePrompts();
      const allText = tf.concat(
        this.tasks.map((t) => textEmbeddings[t.name]),
        0,
      );
      const feats = this.adaptedFeatures(x).map((f, i) => this.l2v[i].forward(f, { text: allText, training: opts.training }));
      const [, hIn, wIn] = x.shape as number[];
      const logits: Record<string, tf.Tensor> = {};
      const alignment: Record<string, tf.Tensor> = {};
      for (const t of this.tasks) {
        const head = this.heads.items.get(t.name)!;
        const proj = this.alignProj.items.get(t.name)!;
        const text = textEmbeddings[t.name];
        if (t.type === 'segmentation') {
          const seg = (head as SegmentationHead).forward(feats, { training: opts.training });
          logits[t.name] = interpolateNhwc(seg, [hIn, wIn], { mode: 'bilinear' });
          const f = feats[this.alignLevel];
          const [b, h, w, c] = f.shape;
          const z = l2Normalize(proj.forward(f.reshape([b * h * w, c])));
          alignment[t.name] = tf.div(tf.matMul(z, text, false, true), this.tau).reshape([b, h, w, t.numClasses]);
        } else {
          const last = feats[feats.length - 1];
          logits[t.name] = (head as ClassifierHead).forward(last, { training: opts.training });
          const z = l2Normalize(proj.forward(tf.mean(last, [1, 2])));
          alignment[t.name] = tf.div(tf.matMul(z, text, false, true), this.tau);
        }
      }
      return { logits, alignment, textEmbeddings, features: feats } as unknown as tf.TensorContainerObject;
    }) as unknown as LvAdapterOutput;
  }

  /**
   * The joint loss on a batch: `targets[task]` is int32 `[B, H, W]` labels (segmentation, at the input size,
   * `ignoreIndex` ignored) or `[B]` class indices (classification). Task losses are cross-entropies of the heads;
   * alignment losses cross-entropies of the alignment logits (segmentation labels nearest-resized to the
   * aligned level).
   */
  loss(x: tf.Tensor, targets: Record<string, tf.Tensor>, opts: ForwardOptions = {}): LvAdapterLosses {
    for (const t of this.tasks) {
      const y = targets?.[t.name];
      const want = t.type === 'segmentation' ? `[${x.shape[0]}, ${x.shape[1]}, ${x.shape[2]}]` : `[${x.shape[0]}]`;
      const ok =
        y instanceof tf.Tensor &&
        (t.type === 'segmentation'
          ? y.rank === 3 && y.shape[0] === x.shape[0] && y.shape[1] === x.shape[1] && y.shape[2] === x.shape[2]
          : y.rank === 1 && y.shape[0] === x.shape[0]);
      check(
        ok,
        () =>
          `lvAdapter.loss: targets.${t.name} must be int32 labels ${want}, got ${y instanceof tf.Tensor ? `[${y.shape.join(', ')}]` : String(y)}`,
      );
    }
    return tf.tidy(() => {
      const out = this.forward(x, opts);
      const taskLosses: Record<string, tf.Scalar> = {};
      const alignmentLosses: Record<string, tf.Scalar> = {};
      for (const t of this.tasks) {
        const y = tf.cast(targets[t.name], 'int32');
        if (t.type === 'segmentation') {
          taskLosses[t.name] = pixelCrossEntropy(out.logits[t.name], y, { ignoreIndex: this.ignoreIndex }) as tf.Scalar;
          const s = out.alignment[t.name];
          const small = tf
            .cast(
              tf.image.resizeNearestNeighbor(tf.cast(y, 'float32').expandDims(3) as tf.Tensor4D, [
                s.shape[1] as number,
                s.shape[2] as number,
              ]),
              'int32',
            )
            .squeeze([3]);
          alignmentLosses[t.name] = pixelCrossEntropy(s, small, { ignoreIndex: this.ignoreIndex }) as tf.Scalar;
        } else {
          const ce = (l: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(y, t.numClasses), l) as tf.Scalar;
          taskLosses[t.name] = ce(out.logits[t.name]);
          alignmentLosses[t.name] = ce(out.alignment[t.name]);
        }
      }
      const alignmentLoss = tf.addN(Object.values(alignmentLosses)) as tf.Scalar;
      const loss = tf.add(tf.addN(Object.values(taskLosses)), tf.mul(alignmentLoss, this.alignmentLossWeight)) as tf.Scalar;
      return { loss, taskLosses, alignmentLosses, alignmentLoss } as unknown as tf.TensorContainerObject;
    }) as unknown as LvAdapterLosses;
  }
}

/** Build an {@link LvAdapter} (freezes `backbone` and `textEncoder`). */
export function lvAdapter<T extends PromptTextEncoder>(opts: LvAdapterOptions<T>): LvAdapter<T> {
  return new LvAdapter(opts);
}
