import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitQkv } from './attention.js';
import { batchedMatMul } from './batchedMatMul.js';
import { Conv2d } from './conv2d.js';
import { truncNormal } from './init.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module, Parameter } from './module.js';
import { LayerNorm } from './norm.js';

/** How {@link PoolingAttention} pools q, k and v: a depthwise conv per head (MViTv2's default), or max / average pooling. */
export type PoolingMode = 'conv' | 'max' | 'avg';

/** Options of {@link PoolingAttention}. */
export interface PoolingAttentionOptions {
  /** Input width. */
  dim: number;
  /** Attention (and output) width. */
  dimOut: number;
  numHeads: number;
  /** `[H, W]` token grid of the input (without the class token). */
  featSize: [number, number];
  qkvBias?: boolean;
  mode?: PoolingMode;
  /** Pooling kernel of q (default `[1, 1]`); padding is `kernel // 2`. */
  kernelQ?: [number, number];
  kernelKv?: [number, number];
  /** Pooling stride of q: the output grid is the pooled q grid. */
  strideQ?: [number, number];
  strideKv?: [number, number];
  /** The first token is a class token: it bypasses pooling and relative positions. */
  hasClsToken?: boolean;
  /** `'spatial'` adds MViTv2's decomposed relative positions; anything else none. */
  relPosType?: string;
  /** Add the pooled query to the attention output (MViTv2 sec. 3.1 "residual pooling connection"). */
  residualPooling?: boolean;
  /** Epsilon of the q/k/v LayerNorms (MViTv2's `norm_eps`, 1e-6). */
  normEps?: number;
}

/** PyTorch's pooled size `floor((n + 2 * (k // 2) - k) / s) + 1`. */
export function pooledSize(n: number, kernel: number, stride: number): number {
  return Math.floor((n + 2 * Math.floor(kernel / 2) - kernel) / stride) + 1;
}

/**
 * Index table of MViTv2's decomposed relative positions along one axis (timm's `cal_rel_pos_type`):
 * `[qLen * kLen]` row-major over (query, key) of
 * `trunc(i * max(k/q, 1) - j * max(q/k, 1) + (k - 1) * max(q/k, 1))`, evaluated in float32 as the
 * reference does, so a coarser query grid is compared with a finer key grid at the same scale.
 */
export function mvitRelPosIndex(qLen: number, kLen: number): Int32Array {
  const f = Math.fround;
  const qRatio = f(Math.max(kLen / qLen, 1));
  const kRatio = f(Math.max(qLen / kLen, 1));
  const offset = f((kLen - 1) * Math.max(qLen / kLen, 1));
  const out = new Int32Array(qLen * kLen);
  for (let i = 0; i < qLen; i++) {
    for (let j = 0; j < kLen; j++) out[i * kLen + j] = Math.trunc(f(f(f(i * qRatio) - f(j * kRatio)) + offset));
  }
  return out;
}

/** `[idx.length, n]` float one-hot rows: row r selects entry `idx[r]`. */
function oneHot(idx: Int32Array, n: number): tf.Tensor2D {
  const m = new Float32Array(idx.length * n);
  idx.forEach((j, r) => (m[r * n + j] = 1));
  return tf.tensor2d(m, [idx.length, n]);
}

/** A pooling step of one of q, k, v: the op's kernel, stride and output grid. */
export interface PoolSpec {
  kernel: number;
  stride: number;
  size: [number, number];
}

/**
 * MViTv2 pooling attention (Li et al. 2022, sec. 3.1-3.2; Fan et al. 2021, sec. 3.1): after the fused
 * qkv projection, q, k and v are pooled per head over the token grid (a depthwise conv without bias
 * shared by the heads, followed by LayerNorm over the head dimension; or max / average pooling),
 * so the query stride sets the output resolution and the key/value stride the attention cost. The
 * logits get decomposed relative positions `q_i . R_h[p(i), p(j)] + q_i . R_w[...]` (sec. 3.2,
 * eq. 4), with the query and key grids put on one scale when their sizes differ, and the pooled
 * query is added to the output (residual pooling). A class token bypasses pooling and relative
 * positions. Input `[B, (1 +) H * W, dim]`, output `[B, (1 +) h * w, dimOut]`.
 * State-dict keys `qkv.*`, `proj.*`, `pool_{q,k,v}.weight` (`[hd, 1, k, k]`), `norm_{q,k,v}.*`,
 * `rel_pos_h`, `rel_pos_w` (timm's `mvitv2.MultiScaleAttention`).
 */
export class PoolingAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly pools: { q: Conv2d | null; k: Conv2d | null; v: Conv2d | null };
  readonly norms: { q: LayerNorm | null; k: LayerNorm | null; v: LayerNorm | null };
  readonly relPosH: Parameter | null = null;
  readonly relPosW: Parameter | null = null;
  readonly headDim: number;
  readonly scale: number;
  /** Pooling of q and of k/v (null = none). */
  readonly poolQ: PoolSpec | null;
  readonly poolKv: PoolSpec | null;
  /** Output (query) grid and key grid. */
  readonly qSize: [number, number];
  readonly kSize: [number, number];
  /** One-hot `[q * k, table length]` matrices of the relative offsets (a matmul gathers the tables on every backend's GEMM). */
  private readonly relSelectH: tf.Tensor2D | null = null;
  private readonly relSelectW: tf.Tensor2D | null = null;

  constructor(readonly opts: PoolingAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, dimOut, numHeads, featSize } = opts;
    check(
      Number.isInteger(numHeads) && numHeads > 0 && dimOut % numHeads === 0,
      () => `numHeads ${numHeads} does not divide the attention width ${dimOut}`,
    );
    const mode = opts.mode ?? 'conv';
    check(['conv', 'max', 'avg'].includes(mode), () => `pooling mode '${mode}' is not supported: expected 'conv', 'max' or 'avg'`);
    this.headDim = dimOut / numHeads;
    this.scale = this.headDim ** -0.5;
    this.qkv = this.addModule('qkv', new Linear(dim, 3 * dimOut, { bias: opts.qkvBias ?? true }));
    this.proj = this.addModule('proj', new Linear(dimOut, dimOut));

    const spec = (name: string, kernel: [number, number], stride: [number, number]): PoolSpec | null => {
      check(
        kernel[0] === kernel[1] && stride[0] === stride[1],
        () => `${name}: only square pooling is supported, got kernel [${kernel}] and stride [${stride}]`,
      );
      check(
        kernel[0] >= 1 && stride[0] >= 1,
        () => `${name}: kernel and stride must be positive, got kernel [${kernel}] and stride [${stride}]`,
      );
      if (kernel[0] * kernel[1] === 1 && stride[0] * stride[1] === 1) return null; // timm skips 1x1 stride-1 pooling
      const size: [number, number] = [pooledSize(featSize[0], kernel[0], stride[0]), pooledSize(featSize[1], kernel[1], stride[1])];
      check(
        size[0] > 0 && size[1] > 0,
        () => `${name}: the ${featSize.join('x')} grid is too small for kernel ${kernel[0]} / stride ${stride[0]}`,
      );
      return { kernel: kernel[0], stride: stride[0], size };
    };
    const strideQ = opts.strideQ ?? [1, 1];
    const strideKv = opts.strideKv ?? [1, 1];
    this.poolQ = spec('strideQ/kernelQ', opts.kernelQ ?? [1, 1], strideQ);
    this.poolKv = spec('strideKv/kernelKv', opts.kernelKv ?? [1, 1], strideKv);
    this.qSize = this.poolQ ? this.poolQ.size : [featSize[0], featSize[1]];
    this.kSize = this.poolKv ? this.poolKv.size : [featSize[0], featSize[1]];

    const hd = this.headDim;
    const eps = opts.normEps ?? 1e-6;
    const conv = (p: PoolSpec | null) =>
      mode === 'conv' && p
        ? new Conv2d(hd, hd, p.kernel, { stride: p.stride, padding: Math.floor(p.kernel / 2), groups: hd, bias: false })
        : null;
    const norm = (p: PoolSpec | null) => (mode === 'conv' && p ? new LayerNorm(hd, eps) : null);
    const pq = conv(this.poolQ);
    const nq = norm(this.poolQ);
    const pk = conv(this.poolKv);
    const nk = norm(this.poolKv);
    const pv = conv(this.poolKv);
    const nv = norm(this.poolKv);
    this.pools = { q: pq && this.addModule('pool_q', pq), k: pk && this.addModule('pool_k', pk), v: pv && this.addModule('pool_v', pv) };
    this.norms = { q: nq && this.addModule('norm_q', nq), k: nk && this.addModule('norm_k', nk), v: nv && this.addModule('norm_v', nv) };

    if (opts.relPosType === 'spatial') {
      check(featSize[0] === featSize[1], () => `spatial relative positions need a square token grid, got ${featSize.join('x')}`);
      // table length as timm sizes it: from the nominal (floor-divided) grids
      const size = featSize[0];
      const len = 2 * Math.max(Math.floor(size / strideQ[1]), Math.floor(size / strideKv[1])) - 1;
      const ih = mvitRelPosIndex(this.qSize[0], this.kSize[0]);
      const iw = mvitRelPosIndex(this.qSize[1], this.kSize[1]);
      const maxIdx = Math.max(
        ih.reduce((a, v) => Math.max(a, v), 0),
        iw.reduce((a, v) => Math.max(a, v), 0),
      );
      check(
        maxIdx < len,
        () =>
          `the ${featSize.join('x')} grid with strideQ [${strideQ}] / strideKv [${strideKv}] gives relative offsets up to ${maxIdx}, beyond the ${len}-entry rel_pos table: the grid must be divisible by the strides`,
      );
      this.relPosH = this.addParameter('rel_pos_h', truncNormal([len, hd], 0.02));
      this.relPosW = this.addParameter('rel_pos_w', truncNormal([len, hd], 0.02));
      this.relSelectH = this.addBuffer('rel_select_h', oneHot(ih, len));
      this.relSelectW = this.addBuffer('rel_select_w', oneHot(iw, len));
    }
  }

  /** Pool one of q/k/v, `[B * heads, (1 +) H * W, hd]` -> `[B * heads, (1 +) h * w, hd]`, then its norm. */
  private pool(t: tf.Tensor3D, p: PoolSpec | null, conv: Conv2d | null, norm: LayerNorm | null): tf.Tensor3D {
    if (!p) return (norm ? norm.forward(t) : t.clone()) as tf.Tensor3D;
    return tf.tidy(() => {
      const [bh, n, hd] = t.shape;
      const [h, w] = this.opts.featSize;
      const cls = this.opts.hasClsToken ?? false;
      const tok = cls ? t.slice([0, 0, 0], [bh, 1, hd]) : null;
      const sp = (cls ? t.slice([0, 1, 0], [bh, n - 1, hd]) : t).reshape([bh, h, w, hd]) as tf.Tensor4D;
      let y: tf.Tensor4D;
      if (conv) y = conv.forward(sp);
      else if (this.opts.mode === 'max') y = tf.maxPool(sp, p.kernel, p.stride, Math.floor(p.kernel / 2));
      else {
        const pad = Math.floor(p.kernel / 2);
        const padded = pad
          ? tf.pad(sp, [
              [0, 0],
              [pad, pad],
              [pad, pad],
              [0, 0],
            ])
          : sp; // count_include_pad
        y = tf.avgPool(padded, p.kernel, p.stride, 'valid');
      }
      let out = y.reshape([bh, p.size[0] * p.size[1], hd]);
      if (tok) out = tf.concat([tok, out], 1);
      return (norm ? norm.forward(out) : out) as tf.Tensor3D;
    });
  }

  /**
   * The decomposed relative position term for the spatial queries `q` `[B * heads, qh * qw, hd]`:
   * `[B * heads, qh * qw, kh * kw]` with `(q_i . Rh[i_h, j_h]) + (q_i . Rw[i_w, j_w])` (MViTv2 eq. 4).
   */
  relPosBias(q: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [bh, , hd] = q.shape;
      const [qh, qw] = this.qSize;
      const [kh, kw] = this.kSize;
      const q4 = q.reshape([bh, qh, qw, hd]);
      const rh = tf
        .matMul(this.relSelectH!, this.relPosH!.value as tf.Tensor2D)
        .reshape([qh, kh, hd])
        .transpose([0, 2, 1]) as tf.Tensor3D; // [qh, hd, kh]
      const rw = tf
        .matMul(this.relSelectW!, this.relPosW!.value as tf.Tensor2D)
        .reshape([qw, kw, hd])
        .transpose([0, 2, 1]) as tf.Tensor3D; // [qw, hd, kw]
      const qByH = q4.transpose([1, 0, 2, 3]).reshape([qh, bh * qw, hd]) as tf.Tensor3D;
      const relH = tf.matMul(qByH, rh).reshape([qh, bh, qw, kh]).transpose([1, 0, 2, 3]); // [BH, qh, qw, kh]
      const qByW = q4.transpose([2, 0, 1, 3]).reshape([qw, bh * qh, hd]) as tf.Tensor3D;
      const relW = tf.matMul(qByW, rw).reshape([qw, bh, qh, kw]).transpose([1, 2, 0, 3]); // [BH, qh, qw, kw]
      const m = bh * qh * qw;
      return tf.add(relH.reshape([m, kh, 1]), relW.reshape([m, 1, kw])).reshape([bh, qh * qw, kh * kw]) as tf.Tensor3D;
    });
  }

  /** `x`: `[B, (1 +) H * W, dim]` on the `featSize` grid; returns `[B, (1 +) qSize[0] * qSize[1], dimOut]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    void opts;
    check(x.rank === 3, () => `PoolingAttention expects tokens [B, N, C], got shape [${x.shape.join(', ')}]`);
    const [b, n, c] = x.shape;
    const { dim, dimOut, numHeads: heads, featSize } = this.opts;
    const cls = this.opts.hasClsToken ?? false;
    const prefix = cls ? 1 : 0;
    check(c === dim, () => `PoolingAttention expected ${dim} channels, got ${c}`);
    check(
      n === featSize[0] * featSize[1] + prefix,
      () =>
        `PoolingAttention expected ${featSize[0] * featSize[1] + prefix} tokens (${featSize.join('x')} grid${cls ? ' + class token' : ''}), got ${n}`,
    );
    return tf.tidy(() => {
      const [q0, k0, v0] = splitQkv(this.qkv.forward(x.reshape([b * n, c])), b, n, heads);
      const q = this.pool(q0, this.poolQ, this.pools.q, this.norms.q);
      const k = this.pool(k0, this.poolKv, this.pools.k, this.norms.k);
      const v = this.pool(v0, this.poolKv, this.pools.v, this.norms.v);
      let attn: tf.Tensor = batchedMatMul(tf.mul(q, this.scale) as tf.Tensor3D, k, true); // [BH, Nq, Nk]
      if (this.relPosH) {
        const qs = cls ? q.slice([0, 1, 0], [-1, -1, -1]) : q;
        let bias: tf.Tensor = this.relPosBias(qs as tf.Tensor3D);
        if (cls)
          bias = tf.pad(bias, [
            [0, 0],
            [1, 0],
            [1, 0],
          ]); // the class token's row and column get none
        attn = tf.add(attn, bias);
      }
      let o: tf.Tensor = batchedMatMul(tf.softmax(attn) as tf.Tensor3D, v);
      if (this.opts.residualPooling ?? true) o = tf.add(o, q);
      return this.proj.forward(mergeHeads(o, b, heads)).reshape([b, -1, dimOut]) as tf.Tensor3D;
    });
  }
}
