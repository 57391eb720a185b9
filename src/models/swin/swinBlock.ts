import * as tf from '@tensorflow/tfjs';
import { CosineWindowAttention } from '../../layers/cosineWindowAttention.js';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm, layerNormAdd } from '../../layers/norm.js';
import { PatchMerging } from '../../layers/patchMerging.js';
import { WindowAttention } from '../../layers/windowAttention.js';
import { shiftedWindowMask, shiftedWindowPartition, shiftedWindowReverse } from '../../layers/windows.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link SwinBlock}. */
export interface SwinBlockOptions {
  dim: number;
  /** `[H, W]` of the stage's token grid. */
  inputResolution: [number, number];
  numHeads: number;
  windowSize: number;
  /** Target shift (window/2 on odd blocks, 0 on even). */
  shiftSize: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  dropPath?: number;
  projDrop?: number;
  attnDrop?: number;
  /** 'v1': pre-norm, Swin attention; 'v2': res-post-norm, cosine attention with CPB. */
  version: 'v1' | 'v2';
  /** SwinV2 only: window size used in pretraining (0 = none). */
  pretrainedWindowSize?: number;
  normEps?: number;
}

/** Per-call options of {@link SwinBlock.forward}. */
export interface SwinBlockForwardOptions extends ForwardOptions {
  /** Override the block's shift (e.g. when running at another resolution than it was built for). */
  shift?: [number, number];
  /** Override the shifted-window mask `[nW, N, N]` (null = none) that goes with `shift`. */
  shiftMask?: tf.Tensor | null;
  /** An extra additive mask `[nW, N, N]` added to the shifted-window mask (MixMIM's per-image mask). */
  extraMask?: tf.Tensor | null;
}

/**
 * timm's `_calc_window_shift`: the window is clamped to the resolution when the resolution is not
 * larger than it, and the shift is dropped then.
 */
export function calcWindowShift(
  res: [number, number],
  window: number,
  shift: number,
): { window: [number, number]; shift: [number, number] } {
  const w: [number, number] = [res[0] <= window ? res[0] : window, res[1] <= window ? res[1] : window];
  const s: [number, number] = [res[0] <= w[0] ? 0 : shift, res[1] <= w[1] ? 0 : shift];
  return { window: w, shift: s };
}

/**
 * A Swin transformer block (Swin sec. 3.2, fig. 3b) on NHWC maps: (shifted) window attention and an
 * MLP, each residual. 'v1' normalises before each branch; 'v2' normalises the branch output
 * (SwinV2 sec. 3.1 res-post-norm). State-dict keys `norm1`, `attn.*`, `norm2`, `mlp.fc1/fc2`.
 */
export class SwinBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: WindowAttention | CosineWindowAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  readonly window: [number, number];
  readonly shift: [number, number];
  readonly attnMask: tf.Tensor3D | null;
  constructor(readonly opts: SwinBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, inputResolution: res } = opts;
    const eps = opts.normEps ?? 1e-5;
    const ws = calcWindowShift(res, opts.windowSize, opts.shiftSize);
    this.window = ws.window;
    this.shift = ws.shift;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    if (opts.version === 'v1') {
      this.attn = this.addModule(
        'attn',
        new WindowAttention({
          dim,
          numHeads,
          windowSize: this.window,
          qkvBias: opts.qkvBias,
          attnDrop: opts.attnDrop,
          projDrop: opts.projDrop,
        }),
      );
    } else {
      const p = opts.pretrainedWindowSize ?? 0;
      this.attn = this.addModule(
        'attn',
        new CosineWindowAttention({
          dim,
          numHeads,
          windowSize: this.window,
          pretrainedWindowSize: [p, p],
          qkvBias: opts.qkvBias,
          attnDrop: opts.attnDrop,
          projDrop: opts.projDrop,
        }),
      );
    }
    this.dropPath = new DropPath(opts.dropPath ?? 0);
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, eps));
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), drop: opts.projDrop }));
    this.attnMask =
      this.shift[0] || this.shift[1]
        ? this.addBuffer('attn_mask', shiftedWindowMask(res[0], res[1], this.window[0], this.window[1], this.shift[0], this.shift[1]))
        : null;
  }

  /** Shift, partition, attend, merge and shift back. */
  private windowAttention(x: tf.Tensor4D, opts: SwinBlockForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const [sh, sw] = opts.shift ?? this.shift;
      const [wh, ww] = this.window;
      let mask: tf.Tensor | null = opts.shiftMask !== undefined ? opts.shiftMask : this.attnMask;
      if (opts.extraMask) mask = mask ? tf.add(mask, opts.extraMask) : opts.extraMask;
      // shift + partition and merge + shift back: one copy each where the backend has our kernels (webgpu)
      const win = shiftedWindowPartition(x, wh, ww, sh, sw);
      const out = this.attn.forward(win, { training: opts.training, mask });
      return shiftedWindowReverse(out, wh, ww, h, w, sh, sw);
    });
  }

  forward(x: tf.Tensor, opts: SwinBlockForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      const x4 = x as tf.Tensor4D;
      const t = { training: opts.training ?? false };
      if (this.opts.version === 'v1') {
        const y = tf.add(x4, this.dropPath.forward(this.windowAttention(this.norm1.forward(x4) as tf.Tensor4D, opts), t));
        return tf.add(y, this.dropPath.forward(this.mlp.forward(this.norm2.forward(y), t), t)) as tf.Tensor4D;
      }
      if (!t.training || this.dropPath.p <= 0) {
        // no drop path: x + norm(f(x)) as one kernel where the backend has it (webgpu with our kernels)
        const y = layerNormAdd(this.norm1, this.windowAttention(x4, opts), x4);
        return layerNormAdd(this.norm2, this.mlp.forward(y, t), y) as tf.Tensor4D;
      }
      const y = tf.add(x4, this.dropPath.forward(this.norm1.forward(this.windowAttention(x4, opts)), t));
      return tf.add(y, this.dropPath.forward(this.norm2.forward(this.mlp.forward(y, t)), t)) as tf.Tensor4D;
    });
  }
}

/** Options of {@link SwinStage}. */
export interface SwinStageOptions {
  dim: number;
  outDim: number;
  /** Resolution after the (optional) downsample. */
  inputResolution: [number, number];
  depth: number;
  downsample: boolean;
  numHeads: number;
  windowSize: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  dropPath: number[];
  projDrop?: number;
  attnDrop?: number;
  version: 'v1' | 'v2';
  pretrainedWindowSize?: number;
  normEps?: number;
}

/**
 * A Swin stage: patch merging at its start (for stages after the first, as timm places it) and
 * `depth` blocks alternating regular and shifted windows. Keys `downsample.*`, `blocks.<j>.*`.
 */
export class SwinStage extends Module {
  readonly downsample: PatchMerging | null;
  readonly blocks: ModuleList<SwinBlock>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  constructor(readonly opts: SwinStageOptions) {
    super();
    this.config = { ...opts };
    this.downsample = opts.downsample
      ? this.addModule(
          'downsample',
          new PatchMerging({
            dim: opts.dim,
            outDim: opts.outDim,
            normPosition: opts.version === 'v1' ? 'pre' : 'post',
            normEps: opts.normEps,
          }),
        )
      : null;
    this.blocks = this.addModule('blocks', new ModuleList<SwinBlock>());
    for (let j = 0; j < opts.depth; j++) {
      const b = new SwinBlock({
        dim: opts.outDim,
        inputResolution: opts.inputResolution,
        numHeads: opts.numHeads,
        windowSize: opts.windowSize,
        shiftSize: j % 2 === 0 ? 0 : Math.floor(opts.windowSize / 2),
        mlpRatio: opts.mlpRatio,
        qkvBias: opts.qkvBias,
        dropPath: opts.dropPath[j] ?? 0,
        projDrop: opts.projDrop,
        attnDrop: opts.attnDrop,
        version: opts.version,
        pretrainedWindowSize: opts.pretrainedWindowSize,
        normEps: opts.normEps,
      });
      this.blocks.push(b);
    }
  }
  /**
   * timm's `SwinTransformerV2Stage._init_respostnorm`: zero every block's res-post-norm weight and
   * bias, so each SwinV2 block starts as the identity (SwinV2 sec. 3.1). The SwinV2 model calls it
   * at construction, as timm does; a checkpoint overwrites it.
   */
  initResPostNorm(): void {
    for (const b of this.blocks.items) {
      for (const p of [b.norm1.weight, b.norm1.bias, b.norm2.weight, b.norm2.bias]) {
        if (p) tf.tidy(() => p.variable.assign(tf.zerosLike(p.variable)));
      }
    }
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y = (this.downsample ? this.downsample.forward(x) : x) as tf.Tensor4D;
      for (const b of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, b, y, (u) => b.forward(u, opts));
      return y === x ? (x.clone() as tf.Tensor4D) : y;
    });
  }
}
