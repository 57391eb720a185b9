import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { biasMaskSoftmax, mergeHeads, splitQkv } from '../../layers/attention.js';
import { dropout } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { gatherRelativeBias } from '../../layers/relativePosition.js';
import { relativePositionIndex3d, Triple } from './windows3d.js';

/** Options of {@link WindowAttention3D}. */
export interface WindowAttention3DOptions {
  dim: number;
  numHeads: number;
  /** The configured `[wd, wh, ww]` window: it sizes the bias table and the index. */
  windowSize: Triple;
  qkvBias?: boolean;
  /** Overrides the `head_dim ** -0.5` scale when set. */
  qkScale?: number | null;
  attnDrop?: number;
  projDrop?: number;
}

/**
 * 3-D window multi-head self-attention with a relative position bias (Video Swin, Liu et al. 2022,
 * sec. 3.2 eq. 1): `softmax(q k^T / sqrt(d) + B + M) v` over the tokens of each 3-D window, B gathered
 * from a `(2wd - 1)(2wh - 1)(2ww - 1) x heads` table. A window of N tokens (a clamped one, or BEVT's
 * 2-D window) takes the bias `table[relative_position_index[:N, :N]]` of the configured window, as the
 * reference does. Input `[B * nW, N, C]`. State-dict keys `qkv.*`, `proj.*`,
 * `relative_position_bias_table`, and the persistent (int64) `relative_position_index` `[N0, N0]`.
 */
export class WindowAttention3D extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly relativePositionBiasTable: Parameter;
  /** The full `[N0 * N0]` index of the configured window (N0 = wd wh ww). */
  readonly relativePositionIndex: Int32Array;
  readonly scale: number;
  private readonly sliced = new Map<number, Int32Array>();
  constructor(readonly opts: WindowAttention3DOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, windowSize } = opts;
    check(
      Number.isInteger(numHeads) && numHeads > 0 && dim % numHeads === 0,
      () => `numHeads ${numHeads} does not divide the width ${dim}`,
    );
    this.scale = opts.qkScale || (dim / numHeads) ** -0.5; // `qk_scale or head_dim ** -0.5`
    const [wd, wh, ww] = windowSize;
    this.relativePositionBiasTable = this.addParameter(
      'relative_position_bias_table',
      truncNormal([(2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), numHeads], 0.02),
    );
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: opts.qkvBias ?? true }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
    this.relativePositionIndex = relativePositionIndex3d(windowSize);
    const n0 = wd * wh * ww;
    // persistent (I64) in the reference's files, so a written state dict loads strictly in PyTorch
    this.addBuffer('relative_position_index', tf.tensor2d(this.relativePositionIndex, [n0, n0], 'int32'), {
      persistent: true,
      int64: true,
    });
  }

  /** `relative_position_index[:n, :n]` as a flat int32 tensor of the current scope (the values are built once per n). */
  private indexFor(n: number): tf.Tensor1D {
    let idx = this.sliced.get(n);
    if (!idx) {
      const n0 = Math.round(Math.sqrt(this.relativePositionIndex.length));
      check(n <= n0, () => `a window of ${n} tokens is larger than the configured window of ${n0}`);
      idx = new Int32Array(n * n);
      for (let p = 0; p < n; p++) idx.set(this.relativePositionIndex.subarray(p * n0, p * n0 + n), p * n);
      this.sliced.set(n, idx);
    }
    return tf.tensor1d(idx, 'int32');
  }

  /** The `[heads, n, n]` relative position bias of a window of `n` tokens. */
  relativePositionBias(n: number): tf.Tensor3D {
    return tf.tidy(() => gatherRelativeBias(this.relativePositionBiasTable.value, this.indexFor(n), n));
  }

  /** `x`: `[B * nW, N, C]` windows; `mask`: `[nW, N, N]` or null. */
  forward(x: tf.Tensor, opts: ForwardOptions & { mask?: tf.Tensor | null } = {}): tf.Tensor3D {
    const [bw, n, c] = x.shape;
    const heads = this.opts.numHeads;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const bias = this.relativePositionBias(n);
      const [q, k, v] = splitQkv(this.qkv.forward(x.reshape([bw * n, c])), bw, n, heads);
      let attn: tf.Tensor = tf.matMul(tf.mul(q, this.scale) as tf.Tensor3D, k, false, true);
      attn = dropout(biasMaskSoftmax(attn, bias, opts.mask ?? null, heads), this.opts.attnDrop ?? 0, training);
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), bw, heads);
      return dropout(this.proj.forward(o.reshape([bw * n, c])), this.opts.projDrop ?? 0, training).reshape([bw, n, c]) as tf.Tensor3D;
    });
  }
}
