import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { mergeHeads, splitHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { normal } from './init.js';
import { denseProduct, Linear } from './linear.js';
import { ForwardOptions, LINEAR, Module, Parameter } from './module.js';

/** Options of {@link MultiheadAttention} (PyTorch's `nn.MultiheadAttention` arguments). */
export interface MultiheadAttentionOptions {
  /** Width of the keys (default `embedDim`); another width gives separate q/k/v projection weights. */
  kdim?: number;
  /** Width of the values (default `embedDim`). */
  vdim?: number;
  /** Biases of the input and output projections (default true). */
  bias?: boolean;
  /** Dropout on the attention probabilities (training only). */
  dropout?: number;
}

/** Inputs of {@link MultiheadAttention.forward} besides the queries. */
export interface MultiheadAttentionInputs extends ForwardOptions {
  /** Keys `[B, S, kdim]` (default: the queries, self-attention). */
  key?: tf.Tensor;
  /** Values `[B, S, vdim]` (default: the keys). */
  value?: tf.Tensor;
  /**
   * Additive float mask (`-inf` = blocked) on the logits: `[L, S]` for every sequence or `[B, L, S]` per
   * sequence (shared by the heads).
   */
  attnMask?: tf.Tensor;
}

/**
 * Multi-head attention (Vaswani et al. 2017, sec. 3.2.2) with PyTorch's `nn.MultiheadAttention` parameters:
 * `in_proj_weight` `[3E, E]` (q | k | v rows) and `in_proj_bias` `[3E]`, or, when the key / value widths differ
 * from `E`, `q_proj_weight` `[E, E]`, `k_proj_weight` `[E, kdim]`, `v_proj_weight` `[E, vdim]`; then `out_proj`.
 * Batch-first tokens `[B, L, E]`; scale `head_dim^-0.5`.
 */
export class MultiheadAttention extends Module {
  readonly inProjWeight: Parameter | null;
  readonly qProjWeight: Parameter | null;
  readonly kProjWeight: Parameter | null;
  readonly vProjWeight: Parameter | null;
  readonly inProjBias: Parameter | null;
  readonly outProj: Linear;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    readonly opts: MultiheadAttentionOptions = {},
  ) {
    super();
    this.config = { embedDim, numHeads, ...opts };
    check(Number.isInteger(numHeads) && numHeads > 0, () => `numHeads must be a positive integer, got ${numHeads}`);
    check(embedDim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${embedDim}`);
    this.headDim = embedDim / numHeads;
    this.kdim = opts.kdim ?? embedDim;
    this.vdim = opts.vdim ?? embedDim;
    const std = embedDim ** -0.5;
    const same = this.kdim === embedDim && this.vdim === embedDim;
    this.inProjWeight = same ? this.addParameter('in_proj_weight', normal([embedDim, 3 * embedDim], std), LINEAR) : null;
    this.qProjWeight = same ? null : this.addParameter('q_proj_weight', normal([embedDim, embedDim], std), LINEAR);
    this.kProjWeight = same ? null : this.addParameter('k_proj_weight', normal([this.kdim, embedDim], std), LINEAR);
    this.vProjWeight = same ? null : this.addParameter('v_proj_weight', normal([this.vdim, embedDim], std), LINEAR);
    this.inProjBias = (opts.bias ?? true) ? this.addParameter('in_proj_bias', tf.zeros([3 * embedDim])) : null;
    this.outProj = this.addModule('out_proj', new Linear(embedDim, embedDim, { bias: opts.bias ?? true }));
  }

  /** The input-projection weight `[in, E]` and bias of part `i` (0 = q, 1 = k, 2 = v). */
  private part(i: number): [tf.Tensor2D, tf.Tensor | null] {
    const e = this.embedDim;
    const w = this.inProjWeight
      ? (tf.slice(this.inProjWeight.value, [0, i * e], [-1, e]) as tf.Tensor2D)
      : ([this.qProjWeight, this.kProjWeight, this.vProjWeight][i]!.value as tf.Tensor2D);
    const b = this.inProjBias ? tf.slice(this.inProjBias.value, [i * e], [e]) : null;
    return [w, b];
  }

  /** `query` `[B, L, E]` (and `key` / `value` `[B, S, *]`) -> `[B, L, E]`. */
  forward(query: tf.Tensor, opts: MultiheadAttentionInputs = {}): tf.Tensor3D {
    const e = this.embedDim;
    check(
      query.rank === 3 && query.shape[2] === e,
      () => `MultiheadAttention expects queries [B, L, ${e}], got shape [${query.shape.join(', ')}]`,
    );
    const [b, l] = query.shape as [number, number, number];
    const key = opts.key ?? query;
    const value = opts.value ?? key;
    check(
      key.rank === 3 && key.shape[0] === b && key.shape[2] === this.kdim,
      () => `MultiheadAttention expects keys [${b}, S, ${this.kdim}], got shape [${key.shape.join(', ')}]`,
    );
    check(
      value.rank === 3 && value.shape[0] === b && value.shape[1] === key.shape[1] && value.shape[2] === this.vdim,
      () => `MultiheadAttention expects values [${b}, ${key.shape[1]}, ${this.vdim}], got shape [${value.shape.join(', ')}]`,
    );
    const s = key.shape[1] as number;
    const h = this.numHeads;
    return tf.tidy(() => {
      let q: tf.Tensor3D;
      let k: tf.Tensor3D;
      let v: tf.Tensor3D;
      if (this.inProjWeight && key === query && value === query) {
        const qkv = denseProduct(
          query.reshape([b * l, e]) as tf.Tensor2D,
          this.inProjWeight.value as tf.Tensor2D,
          this.inProjBias?.value ?? null,
        );
        [q, k, v] = splitQkv(qkv, b, l, h);
      } else {
        const proj = (x: tf.Tensor, i: number, n: number) => {
          const [w, bias] = this.part(i);
          return splitHeads(denseProduct(x.reshape([b * n, x.shape[2]!]) as tf.Tensor2D, w, bias), b, n, h);
        };
        q = proj(query, 0, l);
        k = proj(key, 1, s);
        v = proj(value, 2, s);
      }
      let logits: tf.Tensor = tf.matMul(tf.mul(q, this.headDim ** -0.5) as tf.Tensor3D, k, false, true);
      if (opts.attnMask) logits = addAttnMask(logits, opts.attnMask, b, h);
      const attn = dropout(tf.softmax(logits), this.opts.dropout ?? 0, opts.training ?? false);
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, h);
      return this.outProj.forward(o) as tf.Tensor3D;
    });
  }
}

/** Add an additive mask `[L, S]` or `[B, L, S]` to logits `[B * heads, L, S]`. */
function addAttnMask(logits: tf.Tensor, mask: tf.Tensor, b: number, heads: number): tf.Tensor {
  const [, l, s] = logits.shape;
  if (mask.rank === 2) {
    check(mask.shape[0] === l && mask.shape[1] === s, () => `attention mask must be [${l}, ${s}], got [${mask.shape.join(', ')}]`);
    return tf.add(logits, mask);
  }
  check(
    mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === l && mask.shape[2] === s,
    () => `attention mask must be [${l}, ${s}] or [${b}, ${l}, ${s}], got [${mask.shape.join(', ')}]`,
  );
  return tf.add(logits.reshape([b, heads, l, s]), mask.expandDims(1)).reshape([b * heads, l, s]);
}
