import * as tf from '@tensorflow/tfjs';
import { fusedAttentionQkv } from '../backends/fusedAttention.js';
import { check } from '../errors.js';
import { biasMaskSoftmax, mergeHeads, splitQkv } from './attention.js';
import { dropout } from './dropPath.js';
import { l2Normalize } from './l2Normalize.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module, Parameter } from './module.js';
import { gatherRelativeBias, logSpacedCoordsTable, relativePositionIndex } from './relativePosition.js';

/** Options of {@link CosineWindowAttention}. */
export interface CosineWindowAttentionOptions {
  dim: number;
  numHeads: number;
  windowSize: [number, number];
  /** Window size of the pretraining run, for the log-spaced coordinates (0 = this window). */
  pretrainedWindowSize?: [number, number];
  qkvBias?: boolean;
  attnDrop?: number;
  projDrop?: number;
  /** Hidden width of the continuous position bias MLP (512 in SwinV2). */
  cpbHidden?: number;
}

/**
 * SwinV2 window attention (Liu et al. 2022): scaled cosine attention (sec. 3.3 eq. 2)
 * `cos(q, k) * exp(min(logit_scale, log 100))` with a learnable per-head logit scale, plus the
 * log-spaced continuous position bias (sec. 3.4 eq. 3-4) `16 * sigmoid(MLP(log-coords))`, and q/v
 * biases (k has none). State-dict keys `qkv.weight`, `q_bias`, `v_bias`, `logit_scale` `[heads, 1, 1]`,
 * `cpb_mlp.0.*`, `cpb_mlp.2.weight`, `proj.*` (timm's `WindowAttention` of `swin_transformer_v2`).
 */
export class CosineWindowAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  readonly qBias: Parameter | null;
  readonly vBias: Parameter | null;
  readonly logitScale: Parameter;
  readonly cpbFc1: Linear;
  readonly cpbFc2: Linear;
  readonly relativeCoordsTable: tf.Tensor2D;
  readonly relativePositionIndex: tf.Tensor1D;
  constructor(readonly opts: CosineWindowAttentionOptions) {
    super();
    this.config = { ...opts };
    const { dim, numHeads, windowSize } = opts;
    check(dim % numHeads === 0, () => `numHeads ${numHeads} does not divide the width ${dim}`);
    const [wh, ww] = windowSize;
    const [pwh, pww] = opts.pretrainedWindowSize ?? [0, 0];
    const hidden = opts.cpbHidden ?? 512;
    this.logitScale = this.addParameter('logit_scale', tf.fill([numHeads, 1, 1], Math.log(10)));
    const cpb = new CpbMlp(hidden, numHeads);
    this.addModule('cpb_mlp', cpb);
    this.cpbFc1 = cpb.fc1;
    this.cpbFc2 = cpb.fc2;
    this.qkv = this.addModule('qkv', new Linear(dim, dim * 3, { bias: false }));
    const useBias = opts.qkvBias ?? true;
    this.qBias = useBias ? this.addParameter('q_bias', tf.zeros([dim])) : null;
    this.vBias = useBias ? this.addParameter('v_bias', tf.zeros([dim])) : null;
    this.proj = this.addModule('proj', new Linear(dim, dim));
    this.relativeCoordsTable = this.addBuffer('relative_coords_table', logSpacedCoordsTable(wh, ww, pwh, pww));
    this.relativePositionIndex = this.addBuffer('relative_position_index', tf.tensor1d(relativePositionIndex(wh, ww), 'int32'));
  }

  /** The `[heads, N, N]` continuous position bias `16 * sigmoid(cpb_mlp(table))[index]`. */
  relativePositionBias(): tf.Tensor3D {
    const [wh, ww] = this.opts.windowSize;
    return tf.tidy(() => {
      const table = this.cpbFc2.forward(tf.relu(this.cpbFc1.forward(this.relativeCoordsTable)));
      return tf.mul(tf.sigmoid(gatherRelativeBias(table, this.relativePositionIndex, wh * ww)), 16) as tf.Tensor3D;
    });
  }

  /** `x`: `[B * nW, N, C]` windows; `mask`: `[nW, N, N]` or null. */
  forward(x: tf.Tensor, opts: ForwardOptions & { mask?: tf.Tensor | null } = {}): tf.Tensor3D {
    const [bw, n, c] = x.shape;
    const heads = this.opts.numHeads;
    const training = opts.training ?? false;
    return tf.tidy(() => {
      const x2 = x.reshape([bw * n, c]) as tf.Tensor2D;
      // q/v biases added by the projection (matMul then add on cpu; one pass with our wasm kernels)
      const qkv =
        this.qBias && this.vBias
          ? tf.fused.matMul({
              a: x2,
              b: this.qkv.weight.value as tf.Tensor2D,
              bias: tf.concat([this.qBias.value, tf.zeros([c]), this.vBias.value]),
            })
          : this.qkv.forward(x2);
      const bias = this.relativePositionBias();
      const mask = opts.mask ?? null;
      // the whole core, from qkv to merged heads, in one kernel where the backend has it (webgpu with our kernels; inference only)
      const core =
        training && (this.opts.attnDrop ?? 0) > 0
          ? null
          : fusedAttentionQkv(qkv, bw, n, { heads, logitScale: this.logitScale.value, bias, mask });
      let o: tf.Tensor3D;
      if (core) o = core;
      else {
        const [q, k, v] = splitQkv(qkv, bw, n, heads);
        let attn: tf.Tensor = tf.matMul(l2Normalize(q), l2Normalize(k), false, true); // [bw*heads, N, N]
        const scale = tf.exp(tf.minimum(this.logitScale.value, Math.log(100))); // [heads, 1, 1]
        attn = tf.mul(attn.reshape([bw, heads, n, n]), scale).reshape([bw * heads, n, n]);
        attn = dropout(biasMaskSoftmax(attn, bias, mask, heads), this.opts.attnDrop ?? 0, training);
        o = mergeHeads(tf.matMul(attn as tf.Tensor3D, v), bw, heads);
      }
      return dropout(this.proj.forward(o), this.opts.projDrop ?? 0, training).reshape([bw, n, c]) as tf.Tensor3D;
    });
  }
}

/** SwinV2's `cpb_mlp`: `Linear(2, hidden) -> ReLU -> Linear(hidden, heads, bias=False)` (keys `0.*`, `2.weight`). */
class CpbMlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(hidden: number, heads: number) {
    super();
    this.fc1 = this.addModule('0', new Linear(2, hidden, { bias: true }));
    this.fc2 = this.addModule('2', new Linear(hidden, heads, { bias: false }));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(tf.relu(this.fc1.forward(x))));
  }
}
