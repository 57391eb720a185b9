import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { roll2d, windowPartition, windowReverse } from '../../layers/windows.js';
import { WindowAttention3D } from './windowAttention3d.js';
import { cropEnd3d, padEnd3d, roll3d, Triple, windowPartition3d, windowReverse3d } from './windows3d.js';

/** Options of {@link SwinBlock3D}. */
export interface SwinBlock3DOptions {
  dim: number;
  numHeads: number;
  /** The configured window `[wd, wh, ww]`. */
  windowSize: Triple;
  /** The block's target shift (`window // 2` on odd blocks, 0 on even ones). */
  shiftSize: Triple;
  mlpRatio?: number;
  qkvBias?: boolean;
  qkScale?: number | null;
  drop?: number;
  attnDrop?: number;
  dropPath?: number;
  normEps?: number;
}

/** Per-call geometry of {@link SwinBlock3D.forward}: the stage's clamped window and shift and its mask. */
export interface Block3DForwardOptions extends ForwardOptions {
  window: Triple;
  /** The clamped shift of this block (all zero on even blocks). */
  shift: Triple;
  /** The stage's shifted-window mask `[nW, N, N]`, used only when `shift` has a non-zero entry. */
  mask: tf.Tensor | null;
}

/** Per-call options of {@link SwinBlock3D.forwardImage} (BEVT's 2-D path). */
export interface Block2DForwardOptions extends ForwardOptions {
  /** Square window (the configured `windowSize[1]`). */
  window: number;
  /** The stage's 2-D shifted-window mask, applied in every block. */
  mask: tf.Tensor;
}

/**
 * A Video Swin block (Liu et al. 2022, sec. 3.2, fig. 3): pre-norm 3-D (shifted) window attention and
 * an MLP, each residual. Padding to the window happens after `norm1`; zero padding tokens take part in
 * attention. State-dict keys `norm1`, `attn.*`, `norm2`, `mlp.fc1/fc2`.
 */
export class SwinBlock3D extends Module {
  readonly norm1: LayerNorm;
  readonly attn: WindowAttention3D;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  constructor(readonly opts: SwinBlock3DOptions) {
    super();
    this.config = { ...opts };
    const { dim } = opts;
    const eps = opts.normEps ?? 1e-5;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    this.attn = this.addModule(
      'attn',
      new WindowAttention3D({
        dim,
        numHeads: opts.numHeads,
        windowSize: opts.windowSize,
        qkvBias: opts.qkvBias,
        qkScale: opts.qkScale,
        attnDrop: opts.attnDrop,
        projDrop: opts.drop,
      }),
    );
    this.dropPath = new DropPath(opts.dropPath ?? 0);
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, eps));
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), drop: opts.drop }));
  }

  /** `x + mlp(norm2(x))` with drop path, the second half of both paths. */
  private mlpBranch(x: tf.Tensor, training: boolean): tf.Tensor {
    return tf.add(x, this.dropPath.forward(this.mlp.forward(this.norm2.forward(x), { training }), { training }));
  }

  /** Video path: `x` `[B, D, H, W, C]`. */
  forward(x: tf.Tensor, opts: Block3DForwardOptions): tf.Tensor5D {
    return tf.tidy(() => {
      const training = opts.training ?? false;
      const [b, d, h, w, c] = x.shape;
      const { window, shift } = opts;
      const pad: Triple = [
        (window[0] - (d % window[0])) % window[0],
        (window[1] - (h % window[1])) % window[1],
        (window[2] - (w % window[2])) % window[2],
      ];
      const padded: Triple = [d + pad[0], h + pad[1], w + pad[2]];
      const shifted = shift.some((s) => s > 0);
      let y = padEnd3d(this.norm1.forward(x), pad);
      if (shifted) y = roll3d(y, [-shift[0], -shift[1], -shift[2]]);
      const win = this.attn.forward(windowPartition3d(y, window), { training, mask: shifted ? opts.mask : null });
      y = windowReverse3d(win, window, padded);
      if (shifted) y = roll3d(y, shift);
      y = cropEnd3d(y, [d, h, w]);
      const r = tf.add(x, this.dropPath.forward(y.reshape([b, d, h, w, c]), { training }));
      return this.mlpBranch(r, training) as tf.Tensor5D;
    });
  }

  /**
   * BEVT's image path (`is_img=True`): `x` `[B, H, W, C]`, a square window, no padding or clamping,
   * a roll by this block's `(shift[1], shift[2])` and the stage mask applied whatever the shift.
   */
  forwardImage(x: tf.Tensor, opts: Block2DForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const training = opts.training ?? false;
      const [, h, w] = x.shape;
      const ws = opts.window;
      const [, sh, sw] = this.opts.shiftSize;
      const shifted = sh > 0 || sw > 0;
      let y = this.norm1.forward(x) as tf.Tensor4D;
      if (shifted) y = roll2d(y, -sh, -sw);
      const win = this.attn.forward(windowPartition(y, ws, ws), { training, mask: opts.mask });
      y = windowReverse(win, ws, ws, h, w);
      if (shifted) y = roll2d(y, sh, sw);
      const r = tf.add(x, this.dropPath.forward(y, { training }));
      return this.mlpBranch(r, training) as tf.Tensor4D;
    });
  }
}
