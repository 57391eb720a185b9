import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { dropout } from '../layers/dropPath.js';
import { normal, truncNormal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import { TransformerBlock } from '../layers/transformerBlock.js';

/** Options of {@link videoClsHead} (mmaction's `I3DHead` arguments in camelCase). */
export interface VideoClsHeadOptions {
  /** Channels of the backbone's last map. */
  inChans: number;
  numClasses: number;
  /** Dropout before the classifier (mmaction's `dropout_ratio`, default 0.5). */
  dropRate?: number;
  /** Standard deviation of the classifier's normal init (`init_std`, default 0.01). */
  initStd?: number;
}

/**
 * The video classification head of Video Swin / BEVT fine-tuning (mmaction's `I3DHead`): average over
 * (T, H, W), dropout, then a Linear. Input NTHWC `[B, T, H, W, C]` (or pooled `[B, C]`), output
 * `[B, numClasses]`. State-dict keys `fc_cls.weight`, `fc_cls.bias` (under `cls_head.` in mmaction
 * checkpoints: load with `loadTimmWeights(head, sd, { prefix: 'cls_head.' })` or strip it).
 */
export class VideoClsHead extends Module {
  readonly fcCls: Linear;
  constructor(readonly opts: VideoClsHeadOptions) {
    super();
    this.config = { ...opts };
    check(Number.isInteger(opts.inChans) && opts.inChans > 0, () => `inChans must be a positive integer, got ${opts.inChans}`);
    check(Number.isInteger(opts.numClasses) && opts.numClasses > 0, () => `numClasses must be a positive integer, got ${opts.numClasses}`);
    this.fcCls = this.addModule('fc_cls', new Linear(opts.inChans, opts.numClasses));
    tf.tidy(() => this.fcCls.weight.variable.assign(normal([opts.inChans, opts.numClasses], opts.initStd ?? 0.01)));
  }

  /** Pooled features `[B, C]` of an NTHWC map. */
  pool(x: tf.Tensor): tf.Tensor2D {
    check(
      x.rank === 5 || x.rank === 2,
      () => `VideoClsHead expects an NTHWC map [B, T, H, W, C] or pooled [B, C], got shape [${x.shape.join(', ')}]`,
    );
    check(
      x.shape[x.rank - 1] === this.opts.inChans,
      () => `VideoClsHead expected ${this.opts.inChans} channels (last axis), got shape [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => (x.rank === 2 ? x.clone() : tf.mean(x, [1, 2, 3])) as tf.Tensor2D);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.fcCls.forward(dropout(this.pool(x), this.opts.dropRate ?? 0.5, opts.training ?? false)) as tf.Tensor2D);
  }
}

/** Build mmaction's I3D-style video classification head. */
export function videoClsHead(opts: VideoClsHeadOptions): VideoClsHead {
  return new VideoClsHead(opts);
}

/** How {@link TemporalHead} combines the per-frame features. */
export type TemporalHeadType = 'mean' | 'concat' | 'transformer';

/** Options of {@link temporalHead}. */
export interface TemporalHeadOptions {
  /** Width of the per-frame features. */
  inChans: number;
  numClasses: number;
  /**
   * `'mean'`: average over the frames + Linear (order-blind: the linear probe on frame-averaged features);
   * `'concat'`: the frames' features concatenated in time order + Linear; `'transformer'` (default):
   * a learned temporal position embedding, `depth` pre-norm transformer blocks over the T frame tokens,
   * LayerNorm, average over T + Linear.
   */
  type?: TemporalHeadType;
  /** Frames per clip; required by `'concat'` and `'transformer'` (their weights depend on it). */
  numFrames?: number;
  /** Transformer blocks (default 1). */
  depth?: number;
  /** Attention heads of the blocks (default `inChans / 64` when that divides, else 1). */
  numHeads?: number;
  /** MLP hidden width / width of the blocks (default 4). */
  mlpRatio?: number;
  /** Dropout before the classifier (default 0). */
  dropRate?: number;
}

/**
 * A classifier over per-frame features `[B, T, C]` (the temporal head of a frozen image backbone applied
 * frame by frame, see {@link FrameVideoClassifier}). An NTHWC map `[B, T, H, W, C]` is first averaged over
 * (H, W). Keys: `temporal_embed` `[1, T, C]`, `blocks.i.*` (timm ViT block keys), `norm.*` (transformer
 * only), `fc.weight`, `fc.bias`. Output `[B, numClasses]`.
 */
export class TemporalHead extends Module {
  readonly type: TemporalHeadType;
  readonly numFrames: number | null;
  readonly temporalEmbed: Parameter | null = null;
  readonly blocks: ModuleList<TransformerBlock> | null = null;
  readonly norm: LayerNorm | null = null;
  readonly fc: Linear;
  constructor(readonly opts: TemporalHeadOptions) {
    super();
    this.config = { ...opts };
    const { inChans, numClasses } = opts;
    check(Number.isInteger(inChans) && inChans > 0, () => `inChans must be a positive integer, got ${inChans}`);
    check(Number.isInteger(numClasses) && numClasses > 0, () => `numClasses must be a positive integer, got ${numClasses}`);
    this.type = opts.type ?? 'transformer';
    check(
      ['mean', 'concat', 'transformer'].includes(this.type),
      () => `temporal head type must be 'mean', 'concat' or 'transformer', got '${this.type}'`,
    );
    this.numFrames = opts.numFrames ?? null;
    if (this.type !== 'mean')
      check(
        Number.isInteger(this.numFrames) && (this.numFrames as number) > 0,
        () => `a '${this.type}' temporal head needs numFrames (a positive integer), got ${opts.numFrames}`,
      );
    const t = this.numFrames as number;
    if (this.type === 'transformer') {
      const heads = opts.numHeads ?? (inChans % 64 === 0 ? inChans / 64 : 1);
      check(Number.isInteger(heads) && heads > 0 && inChans % heads === 0, () => `numHeads ${heads} does not divide inChans ${inChans}`);
      const depth = opts.depth ?? 1;
      check(Number.isInteger(depth) && depth > 0, () => `depth must be a positive integer, got ${depth}`);
      this.temporalEmbed = this.addParameter('temporal_embed', truncNormal([1, t, inChans], 0.02));
      this.blocks = this.addModule(
        'blocks',
        new ModuleList(
          Array.from(
            { length: depth },
            () => new TransformerBlock({ dim: inChans, numHeads: heads, mlpRatio: opts.mlpRatio ?? 4, qkvBias: true, normEps: 1e-6 }),
          ),
        ),
      );
      this.norm = this.addModule('norm', new LayerNorm(inChans, 1e-6));
    }
    this.fc = this.addModule('fc', new Linear(this.type === 'concat' ? t * inChans : inChans, numClasses));
  }

  /** `[B, T, C]` frame features of `x` (`[B, T, C]`, or NTHWC `[B, T, H, W, C]` averaged over H, W), checked. */
  private frames(x: tf.Tensor): tf.Tensor3D {
    check(
      x.rank === 3 || x.rank === 5,
      () => `TemporalHead expects per-frame features [B, T, C] or an NTHWC map [B, T, H, W, C], got shape [${x.shape.join(', ')}]`,
    );
    check(
      x.shape[x.rank - 1] === this.opts.inChans,
      () => `TemporalHead expected ${this.opts.inChans} channels (last axis), got shape [${x.shape.join(', ')}]`,
    );
    if (this.numFrames !== null && this.type !== 'mean')
      check(
        x.shape[1] === this.numFrames,
        () => `this '${this.type}' temporal head was built for ${this.numFrames} frames, got ${x.shape[1]}`,
      );
    return tf.tidy(() => (x.rank === 5 ? tf.mean(x, [2, 3]) : x.clone()) as tf.Tensor3D);
  }

  /** The pooled clip feature before the classifier (`[B, C]`, or `[B, T C]` for `'concat'`). */
  preLogits(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const f = this.frames(x);
      const [b, t, c] = f.shape;
      if (this.type === 'mean') return tf.mean(f, 1) as tf.Tensor2D;
      if (this.type === 'concat') return f.reshape([b, t * c]) as tf.Tensor2D;
      let y: tf.Tensor = tf.add(f, this.temporalEmbed!.value);
      for (const blk of this.blocks!.items) y = blk.forward(y, opts);
      return tf.mean(this.norm!.forward(y), 1) as tf.Tensor2D;
    });
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.fc.forward(dropout(this.preLogits(x, opts), this.opts.dropRate ?? 0, opts.training ?? false)) as tf.Tensor2D);
  }
}

/** Build a temporal head over per-frame features (mean, concatenation, or a small temporal transformer). */
export function temporalHead(opts: TemporalHeadOptions): TemporalHead {
  return new TemporalHead(opts);
}

/** An image backbone as {@link FrameVideoClassifier} uses it: NHWC frames in, features out. */
export interface FrameBackbone extends Module {
  forward(x: tf.Tensor, opts?: ForwardOptions): unknown;
  /** Width of the pooled features, when the backbone tells it (timm's `num_features`). */
  readonly numFeatures?: number;
}

/** Options of {@link frameVideoClassifier}. */
export interface FrameVideoOptions {
  /** Freeze the image backbone (default true): it runs in eval mode and only the head trains. */
  freeze?: boolean;
  /** Frames per backbone call (default all `B T` frames at once): lower it to bound the memory. */
  frameChunk?: number;
}

/**
 * The frozen-backbone path for video: an image backbone applied to every frame of a clip NTHWC
 * `[B, T, H, W, C]` (as `B T` NHWC images), its per-frame features `[B, T, C]` fed to a temporal head
 * ({@link TemporalHead}, or any module on `[B, T, C]`). The backbone may return pooled features `[N, C]`
 * (a timm-style backbone with `numClasses: 0`), tokens `[N, L, C]` or NHWC maps `[N, h, w, C]` (averaged),
 * or a list of maps (the last is used). Keys `backbone.*`, `head.*`.
 */
export class FrameVideoClassifier extends Module {
  readonly frozen: boolean;
  readonly frameChunk: number;
  constructor(
    readonly backbone: FrameBackbone,
    readonly head: Module,
    opts: FrameVideoOptions = {},
  ) {
    super();
    this.addModule('backbone', backbone);
    this.addModule('head', head);
    this.frozen = opts.freeze ?? true;
    if (this.frozen) backbone.setTrainable(false);
    this.frameChunk = opts.frameChunk ?? Infinity;
    check(
      this.frameChunk === Infinity || (Number.isInteger(this.frameChunk) && this.frameChunk > 0),
      () => `frameChunk must be a positive integer, got ${opts.frameChunk}`,
    );
    const want = (head as TemporalHead).opts?.inChans;
    if (backbone.numFeatures !== undefined && want !== undefined)
      check(
        backbone.numFeatures === want,
        () => `the backbone gives ${backbone.numFeatures}-channel frame features, the temporal head expects ${want}`,
      );
  }

  /** Pooled features `[N, C]` of a backbone output. */
  private pooled(y: unknown): tf.Tensor2D {
    const t = (Array.isArray(y) ? y[y.length - 1] : y) as tf.Tensor;
    check(
      t instanceof tf.Tensor && t.rank >= 2 && t.rank <= 4,
      () =>
        `the frame backbone must return [N, C], [N, L, C] or NHWC [N, h, w, C] features, got ${t instanceof tf.Tensor ? `shape [${t.shape.join(', ')}]` : typeof t}`,
    );
    return (t.rank === 2 ? t.clone() : tf.mean(t, t.rank === 3 ? 1 : [1, 2])) as tf.Tensor2D;
  }

  /** Per-frame features `[B, T, C]` of an NTHWC clip (the frozen backbone in eval mode, no gradient needed). */
  frameFeatures(clip: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    check(clip.rank === 5, () => `expected an NTHWC clip batch [B, T, H, W, C], got shape [${clip.shape.join(', ')}]`);
    const [b, t, h, w, c] = clip.shape;
    const training = !this.frozen && (opts.training ?? false);
    return tf.tidy(() => {
      const frames = clip.reshape([b * t, h, w, c]);
      const n = b * t;
      const step = Math.min(this.frameChunk, n);
      const parts: tf.Tensor2D[] = [];
      for (let s = 0; s < n; s += step) {
        const x = step === n ? frames : frames.slice([s, 0, 0, 0], [Math.min(step, n - s), -1, -1, -1]);
        parts.push(tf.tidy(() => this.pooled(this.backbone.forward(x, { training }))));
      }
      const f = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
      return f.reshape([b, t, f.shape[1]]) as tf.Tensor3D;
    });
  }

  /** Logits `[B, numClasses]` of an NTHWC clip. */
  forward(clip: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.head.forward(this.frameFeatures(clip, opts), opts) as tf.Tensor2D);
  }
}

/**
 * The frozen-model path for video: `backbone` (an image model returning per-frame features) applied to
 * every frame, then `head` (default a `'transformer'` {@link TemporalHead} built from `headOptions`).
 */
export function frameVideoClassifier(
  backbone: FrameBackbone,
  head: Module | (Omit<TemporalHeadOptions, 'inChans'> & { inChans?: number }),
  opts: FrameVideoOptions = {},
): FrameVideoClassifier {
  const h =
    head instanceof Module
      ? head
      : temporalHead({
          ...head,
          inChans:
            head.inChans ??
            backbone.numFeatures ??
            (() => {
              throw new VisBackbonesError('frameVideoClassifier: pass inChans (the backbone does not tell numFeatures)');
            })(),
        });
  return new FrameVideoClassifier(backbone, h, opts);
}
