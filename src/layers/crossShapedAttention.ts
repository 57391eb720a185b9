import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { LePE } from './lepe.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module, ModuleList } from './module.js';
import { windowPartition, windowReverse } from './windows.js';

/**
 * Which stripes a branch attends within (CSWin, Dong et al. 2022, sec. 3.2): `'vertical'` stripes are
 * `H x splitSize` (the official `idx = 0`), `'horizontal'` stripes `splitSize x W` (`idx = 1`), `'full'`
 * is one window over the whole map (`idx = -1`).
 */
export type StripeMode = 'vertical' | 'horizontal' | 'full';

/** The `[height, width]` of one stripe of a branch. */
export function stripeShape(mode: StripeMode, resolution: [number, number], splitSize: number): [number, number] {
  const [h, w] = resolution;
  if (mode === 'full') return [h, w];
  return mode === 'vertical' ? [h, splitSize] : [splitSize, w];
}

/** Options of {@link StripeAttention}. */
export interface StripeAttentionOptions {
  /** Channels of this branch. */
  dim: number;
  numHeads: number;
  /** `[H, W]` of the token map. */
  resolution: [number, number];
  splitSize: number;
  mode: StripeMode;
  /** Override of the `head_dim ** -0.5` logit scale (the official `qk_scale`). */
  qkScale?: number | null;
  attnDrop?: number;
}

/**
 * One branch of cross-shaped window attention (the official `LePEAttention`): multi-head
 * self-attention inside each stripe plus LePE on V within the same stripe,
 * `softmax(q k^T * scale) v + DWConv3x3(v)` (sec. 3.2 eq. 1-3, sec. 3.3 eq. 5). Takes the branch's
 * q, k, v channels as an NHWC map `[B, H, W, 3 * dim]` (q, then k, then v) and returns `[B, H, W, dim]`.
 * State-dict keys `get_v.weight`, `get_v.bias`.
 */
export class StripeAttention extends Module {
  readonly getV: LePE;
  readonly stripe: [number, number];
  readonly headDim: number;
  readonly scale: number;
  constructor(readonly opts: StripeAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, resolution, splitSize, mode } = opts;
    check(numHeads > 0 && dim % numHeads === 0, () => `stripe attention: numHeads ${numHeads} does not divide the branch width ${dim}`);
    this.stripe = stripeShape(mode, resolution, splitSize);
    const [sh, sw] = this.stripe;
    check(
      resolution[0] % sh === 0 && resolution[1] % sw === 0,
      () => `splitSize ${splitSize} does not divide the ${resolution[0]}x${resolution[1]} token map into ${mode} stripes of ${sh}x${sw}`,
    );
    this.headDim = Math.floor(dim / numHeads);
    this.scale = opts.qkScale ?? this.headDim ** -0.5;
    this.getV = this.addModule('get_v', new LePE(dim, 3));
  }

  forward(qkv: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    const { dim, numHeads, resolution } = this.opts;
    check(
      qkv.rank === 4 && qkv.shape[1] === resolution[0] && qkv.shape[2] === resolution[1] && qkv.shape[3] === 3 * dim,
      () =>
        `stripe attention expects q|k|v as NHWC [B, ${resolution[0]}, ${resolution[1]}, ${3 * dim}], got shape [${qkv.shape.join(', ')}]`,
    );
    const [sh, sw] = this.stripe;
    const [, h, w] = qkv.shape;
    return tf.tidy(() => {
      const win = windowPartition(qkv, sh, sw); // [B * nW, N, 3 * dim]
      const [bw, n] = win.shape;
      const [q, k, v] = splitQkv(win, bw, n, numHeads); // [B * nW * heads, N, hd]
      const lepe = this.getV.forwardWindows(tf.slice(win, [0, 0, 2 * dim], [bw, n, dim]), sh, sw);
      let attn: tf.Tensor = tf.softmax(tf.matMul(tf.mul(q, this.scale), k, false, true));
      attn = dropout(attn, this.opts.attnDrop ?? 0, opts.training ?? false);
      const o = tf.add(mergeHeads(tf.matMul(attn as tf.Tensor3D, v), bw, numHeads), lepe);
      return windowReverse(o, sh, sw, h, w);
    });
  }
}

/** Options of {@link CrossShapedAttention}. */
export interface CrossShapedAttentionOptions {
  dim: number;
  numHeads: number;
  /** `[H, W]` (or the side of a square map) of the token map. */
  resolution: number | [number, number];
  /** Stripe width. */
  splitSize: number;
  /**
   * One full-attention branch with all heads instead of the two stripe branches (CSWin's last stage).
   * Also chosen when the map is `splitSize x splitSize`, as the official code does.
   */
  fullAttention?: boolean;
  qkvBias?: boolean;
  qkScale?: number | null;
  attnDrop?: number;
  /** Dropout after `proj` (default 0; the official CSWin block defines but never applies it). */
  projDrop?: number;
}

/**
 * Cross-shaped window self-attention (CSWin, Dong et al. 2022, sec. 3.2): `qkv` projection, the channels
 * (and heads) split in two halves, the first attending within vertical stripes `H x splitSize`, the
 * second within horizontal stripes `splitSize x W`, each with LePE (sec. 3.3); the halves are concatenated
 * and projected. A single full-attention branch with all heads is used on the last stage or when the
 * map equals the stripe size (the official `last_stage` / `branch_num = 1`). NHWC in and out.
 * State-dict keys `qkv.*`, `attns.<i>.get_v.*`, `proj.*` (the official names, at the block's level).
 */
export class CrossShapedAttention extends Module {
  readonly qkv: Linear;
  readonly attns: ModuleList<StripeAttention>;
  readonly proj: Linear;
  readonly resolution: [number, number];
  readonly branches: 1 | 2;
  constructor(readonly opts: CrossShapedAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, splitSize } = opts;
    this.resolution = typeof opts.resolution === 'number' ? [opts.resolution, opts.resolution] : [opts.resolution[0], opts.resolution[1]];
    const [h, w] = this.resolution;
    check(Number.isInteger(splitSize) && splitSize > 0, () => `splitSize must be a positive integer, got ${splitSize}`);
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    this.branches = opts.fullAttention || (h === splitSize && w === splitSize) ? 1 : 2;
    if (this.branches === 2) {
      check(
        numHeads % 2 === 0,
        () =>
          `numHeads ${numHeads} cannot be split evenly between the vertical and horizontal stripe branches (cross-shaped attention needs an even head count)`,
      );
      check(
        h % splitSize === 0 && w % splitSize === 0,
        () => `splitSize ${splitSize} does not divide the ${h}x${w} token map (stripes of width ${splitSize} must tile it)`,
      );
    }
    this.qkv = this.addModule('qkv', new Linear(dim, 3 * dim, { bias: opts.qkvBias ?? true }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
    this.attns = this.addModule('attns', new ModuleList<StripeAttention>());
    const modes: StripeMode[] = this.branches === 1 ? ['full'] : ['vertical', 'horizontal'];
    for (const mode of modes) {
      this.attns.push(
        new StripeAttention({
          dim: dim / this.branches,
          numHeads: numHeads / this.branches,
          resolution: this.resolution,
          splitSize,
          mode,
          qkScale: opts.qkScale,
          attnDrop: opts.attnDrop,
        }),
      );
    }
  }

  /** `x`: NHWC `[B, H, W, C]` (already normalised) -> `[B, H, W, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    const [h, w] = this.resolution;
    const c = this.opts.dim;
    check(
      x.rank === 4 && x.shape[1] === h && x.shape[2] === w && x.shape[3] === c,
      () => `cross-shaped attention expects NHWC [B, ${h}, ${w}, ${c}], got shape [${x.shape.join(', ')}]`,
    );
    const b = x.shape[0];
    return tf.tidy(() => {
      const qkv = this.qkv.forward(x); // [B, H, W, 3C]: (q | k | v) along channels
      let o: tf.Tensor;
      if (this.branches === 1) o = this.attns.items[0].forward(qkv, opts);
      else {
        // channel halves of q, k and v: [BHW, 3, 2, C/2] -> two [B, H, W, 3 * C/2]
        const halves = tf.split(qkv.reshape([b * h * w, 3, 2, c / 2]), 2, 2).map((t) => t.reshape([b, h, w, (3 * c) / 2]));
        o = tf.concat([this.attns.items[0].forward(halves[0], opts), this.attns.items[1].forward(halves[1], opts)], 3);
      }
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, opts.training ?? false) as tf.Tensor4D;
    });
  }
}
