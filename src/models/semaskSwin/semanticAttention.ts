import * as tf from '@tensorflow/tfjs';
import { batchedMatMul } from '../../layers/batchedMatMul.js';
import { dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { windowPartitionPadded, windowUnpartitionPadded } from '../../layers/paddedWindows.js';

/**
 * SeMask's semantic attention (Jain et al. 2021, "SeMask: Semantically Masked Transformers for
 * Semantic Segmentation", sec. 3.2, the Semantic Layer): per-token class logits `S = x Wq` (the
 * semantic prior map), class features `F = x Wk`, values `V = x Wv`; `A = softmax(S F^T)` over the
 * tokens of a group (no scaling), `x + gamma * res(dropout_0.1(A V))`. Input `[G, N, C]` (G groups of N
 * tokens: windows, or whole images). State-dict keys `mlp_cls_q`, `mlp_cls_k`, `mlp_v`, `mlp_res`,
 * `gamma` (the official `SemanticAttention`).
 */
export class SemanticAttention extends Module {
  readonly mlpClsQ: Linear;
  readonly mlpClsK: Linear;
  readonly mlpV: Linear;
  readonly mlpRes: Linear;
  readonly gamma: Parameter;
  constructor(
    readonly dim: number,
    readonly numCls: number,
  ) {
    super();
    this.config = { dim, numCls };
    this.mlpClsQ = this.addModule('mlp_cls_q', new Linear(dim, numCls));
    this.mlpClsK = this.addModule('mlp_cls_k', new Linear(dim, numCls));
    this.mlpV = this.addModule('mlp_v', new Linear(dim, dim));
    this.mlpRes = this.addModule('mlp_res', new Linear(dim, dim));
    // zero-initialised, as the reference: the semantic layer starts as the identity on norm1(x)
    this.gamma = this.addParameter('gamma', tf.zeros([1]));
  }

  /** `x` `[G, N, C]` -> the class logits `[G, N, numCls]` and the updated tokens `[G, N, C]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): { seg: tf.Tensor3D; x: tf.Tensor3D } {
    const [g, n, c] = x.shape;
    const k = this.numCls;
    return tf.tidy(() => {
      const x2 = x.reshape([g * n, c]);
      const seg = this.mlpClsQ.forward(x2).reshape([g, n, k]) as tf.Tensor3D;
      const ft = this.mlpClsK.forward(x2).reshape([g, n, k]) as tf.Tensor3D;
      const v = this.mlpV.forward(x2).reshape([g, n, c]) as tf.Tensor3D;
      const a = tf.softmax(batchedMatMul(seg, ft, true)) as tf.Tensor3D;
      let f = this.mlpRes.forward(batchedMatMul(a, v).reshape([g * n, c]));
      f = dropout(f, 0.1, opts.training ?? false);
      const out = tf.add(tf.mul(this.gamma.value, f.reshape([g, n, c])), x) as tf.Tensor3D;
      return { seg, x: out };
    });
  }
}

/** Options of {@link SemanticLayer}. */
export interface SemanticLayerOptions {
  dim: number;
  numCls: number;
  /** Window of the windowed layer (padding to multiples, no shift); ignored when `global`. */
  windowSize: number;
  numSemBlocks: number;
  /** Attend over the whole map (the official `SeMaskBlock`) instead of windows (`SWSeMaskBlock`). */
  global: boolean;
}

/**
 * A stage's semantic layer (SeMask sec. 3.2): `h = norm1(x)`, then the chained {@link SemanticAttention}
 * blocks over windows of `windowSize` (zero-padded at the bottom/right, cropped after) or over the whole
 * map. Its output is `h` after the blocks (the residual is around the normalised tokens; the stage
 * input is not added back) and the last block's class logits, both NHWC. State-dict keys `norm1`,
 * `class_injection.<m>.*`.
 */
export class SemanticLayer extends Module {
  readonly norm1: LayerNorm;
  readonly classInjection: ModuleList<SemanticAttention>;
  constructor(readonly opts: SemanticLayerOptions) {
    super();
    this.config = { ...opts };
    this.norm1 = this.addModule('norm1', new LayerNorm(opts.dim, 1e-5));
    this.classInjection = this.addModule('class_injection', new ModuleList<SemanticAttention>());
    for (let m = 0; m < opts.numSemBlocks; m++) this.classInjection.push(new SemanticAttention(opts.dim, opts.numCls));
  }

  /** `x` NHWC `[B, H, W, C]` -> tokens `[B, H, W, C]` and semantic prior logits `[B, H, W, numCls]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): { x: tf.Tensor4D; seg: tf.Tensor4D } {
    const [b, h, w, c] = x.shape;
    const k = this.opts.numCls;
    const res = tf.tidy(() => {
      const y = this.norm1.forward(x);
      const ws = this.opts.windowSize;
      const win = this.opts.global ? null : windowPartitionPadded(y, ws);
      let t: tf.Tensor3D = win ? (win.windows.reshape([-1, ws * ws, c]) as tf.Tensor3D) : (y.reshape([b, h * w, c]) as tf.Tensor3D);
      let seg: tf.Tensor3D | null = null;
      for (const blk of this.classInjection.items) ({ seg, x: t } = blk.forward(t, opts));
      if (!win) return [t.reshape([b, h, w, c]), seg!.reshape([b, h, w, k])];
      return [windowUnpartitionPadded(t, ws, [h, w], win.padded), windowUnpartitionPadded(seg!, ws, [h, w], win.padded)];
    });
    return { x: res[0] as tf.Tensor4D, seg: res[1] as tf.Tensor4D };
  }
}
