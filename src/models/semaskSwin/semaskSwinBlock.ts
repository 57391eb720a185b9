import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { paddedSize } from '../../layers/paddedWindows.js';
import { relativePositionIndex } from '../../layers/relativePosition.js';
import { WindowAttention, WindowAttentionOptions } from '../../layers/windowAttention.js';
import { roll2d, shiftedWindowMask, windowPartition, windowReverse } from '../../layers/windows.js';

/**
 * Window attention whose `relative_position_index` `[N, N]` is a persistent int64 buffer, as in the
 * original Swin code (it is in the reference checkpoints, as I64): loaded when present, written back.
 */
export class PersistentIndexWindowAttention extends WindowAttention {
  constructor(opts: WindowAttentionOptions) {
    super(opts);
    const n = opts.windowSize[0] * opts.windowSize[1];
    this.addBuffer('relative_position_index', tf.tensor2d(relativePositionIndex(opts.windowSize[0], opts.windowSize[1]), [n, n], 'int32'), {
      persistent: true,
      int64: true,
    });
  }
}

/** Options of {@link SemaskSwinBlock}. */
export interface SemaskSwinBlockOptions {
  dim: number;
  numHeads: number;
  windowSize: number;
  /** 0 on even blocks, `windowSize // 2` on odd ones. */
  shiftSize: number;
  mlpRatio: number;
  qkvBias: boolean;
  qkScale: number | null;
  drop: number;
  attnDrop: number;
  dropPath: number;
}

/**
 * The original (Microsoft / mmseg) Swin block (Liu et al. 2021, sec. 3.2) that SeMask builds on, for
 * maps of any size: `norm1(x)` is zero-padded at the bottom/right to multiples of the window, cyclically
 * shifted, attended per window (relative position bias; in shifted blocks the -100 region mask of the
 * padded grid), shifted back and cropped; then the residual and `x + mlp(norm2(x))`. Unlike timm's block
 * the window is never clamped to a small map and the shift never dropped. Non-shifted blocks use no
 * mask, so padded zero tokens take part as keys and values. NHWC in and out. State-dict keys `norm1`,
 * `attn.{qkv, proj, relative_position_bias_table}`, `norm2`, `mlp.{fc1, fc2}`.
 */
export class SemaskSwinBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: WindowAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  private readonly masks = new Map<string, Float32Array>();
  constructor(readonly opts: SemaskSwinBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim, windowSize: ws } = opts;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, 1e-5));
    this.attn = this.addModule(
      'attn',
      new PersistentIndexWindowAttention({
        dim,
        numHeads: opts.numHeads,
        windowSize: [ws, ws],
        qkvBias: opts.qkvBias,
        qkScale: opts.qkScale,
        attnDrop: opts.attnDrop,
        projDrop: opts.drop,
      }),
    );
    this.dropPath = new DropPath(opts.dropPath);
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, 1e-5));
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * opts.mlpRatio), drop: opts.drop }));
  }

  /**
   * The shifted-window mask of a padded `hp x wp` grid as a new tensor; its values are computed once per
   * grid size and cached outside the tensor memory (inputs of any size must not grow the tensor count).
   */
  private shiftMask(hp: number, wp: number): tf.Tensor3D {
    const key = `${hp}x${wp}`;
    const n = this.opts.windowSize ** 2;
    let m = this.masks.get(key);
    if (!m) {
      const { windowSize: ws, shiftSize: s } = this.opts;
      const t = shiftedWindowMask(hp, wp, ws, ws, s, s);
      m = t.dataSync() as Float32Array;
      t.dispose();
      this.masks.set(key, m);
    }
    return tf.tensor3d(m, [m.length / (n * n), n, n]);
  }

  /** `x`: NHWC `[B, H, W, C]` of any size. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    const t = { training: opts.training ?? false };
    const [, h, w] = x.shape;
    const { windowSize: ws, shiftSize: s } = this.opts;
    const hp = paddedSize(h, ws);
    const wp = paddedSize(w, ws);
    return tf.tidy(() => {
      const mask = s > 0 ? this.shiftMask(hp, wp) : null;
      let y: tf.Tensor = this.norm1.forward(x);
      if (hp !== h || wp !== w)
        y = tf.pad(y, [
          [0, 0],
          [0, hp - h],
          [0, wp - w],
          [0, 0],
        ]);
      if (s > 0) y = roll2d(y, -s, -s);
      const o = this.attn.forward(windowPartition(y, ws, ws), { training: t.training, mask });
      y = windowReverse(o, ws, ws, hp, wp);
      if (s > 0) y = roll2d(y, s, s);
      if (hp !== h || wp !== w) y = y.slice([0, 0, 0, 0], [-1, h, w, -1]);
      const z = tf.add(x, this.dropPath.forward(y, t));
      return tf.add(z, this.dropPath.forward(this.mlp.forward(this.norm2.forward(z), t), t)) as tf.Tensor4D;
    });
  }
}
