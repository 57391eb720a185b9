import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { PoolingAttention, PoolingMode } from '../../layers/poolingAttention.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link MultiScaleBlock}. */
export interface MultiScaleBlockOptions {
  dim: number;
  dimOut: number;
  numHeads: number;
  /** `[H, W]` token grid of the input. */
  featSize: [number, number];
  mlpRatio?: number;
  qkvBias?: boolean;
  dropPath?: number;
  normEps?: number;
  kernelQ?: [number, number];
  kernelKv?: [number, number];
  strideQ?: [number, number];
  strideKv?: [number, number];
  mode?: PoolingMode;
  hasClsToken?: boolean;
  /** Change the width inside attention (true) or in the MLP (false). */
  expandAttn?: boolean;
  relPosType?: string;
  residualPooling?: boolean;
}

/**
 * MViTv2 block (Li et al. 2022, sec. 3; Fan et al. 2021, sec. 3.2): pre-norm pooling attention and
 * MLP, each residual. When the block changes the width, the attention shortcut is
 * `shortcut_proj_attn(norm1(x))` (a Linear on the normalised input; other blocks use the raw `x`), or,
 * with `expandAttn` false, the MLP shortcut is `shortcut_proj_mlp(norm2(x))`. When q is strided the
 * attention shortcut is max-pooled with kernel `stride + 1`, padding `kernel // 2`; a class token
 * bypasses that pooling. Tokens `[B, (1 +) H * W, dim]` in, `[B, (1 +) h * w, dimOut]` out.
 * State-dict keys `norm1`, `shortcut_proj_attn`, `attn.*`, `norm2`, `shortcut_proj_mlp`,
 * `mlp.fc1/fc2` (timm's `MultiScaleBlock`).
 */
export class MultiScaleBlock extends Module {
  readonly norm1: LayerNorm;
  readonly shortcutProjAttn: Linear | null;
  readonly attn: PoolingAttention;
  readonly norm2: LayerNorm;
  readonly shortcutProjMlp: Linear | null;
  readonly mlp: Mlp;
  readonly dropPath: DropPath;
  /** Output token grid. */
  readonly outSize: [number, number];
  /** Kernel / stride of the max-pooled attention shortcut (null = none). */
  readonly shortcutPool: { kernel: number; stride: number } | null;
  constructor(readonly opts: MultiScaleBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim, dimOut } = opts;
    const eps = opts.normEps ?? 1e-6;
    const expand = opts.expandAttn ?? false;
    const projNeeded = dim !== dimOut;
    const attDim = expand ? dimOut : dim;
    const strideQ = opts.strideQ ?? [1, 1];
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    this.shortcutProjAttn = projNeeded && expand ? this.addModule('shortcut_proj_attn', new Linear(dim, dimOut)) : null;
    this.attn = this.addModule(
      'attn',
      new PoolingAttention({
        dim,
        dimOut: attDim,
        numHeads: opts.numHeads,
        featSize: opts.featSize,
        qkvBias: opts.qkvBias,
        mode: opts.mode,
        kernelQ: opts.kernelQ,
        kernelKv: opts.kernelKv,
        strideQ,
        strideKv: opts.strideKv,
        hasClsToken: opts.hasClsToken,
        relPosType: opts.relPosType,
        residualPooling: opts.residualPooling,
        normEps: eps,
      }),
    );
    this.outSize = this.attn.qSize;
    this.shortcutPool = strideQ[0] * strideQ[1] > 1 ? { kernel: strideQ[0] > 1 ? strideQ[0] + 1 : strideQ[0], stride: strideQ[0] } : null;
    this.dropPath = new DropPath(opts.dropPath ?? 0);
    this.norm2 = this.addModule('norm2', new LayerNorm(attDim, eps));
    this.shortcutProjMlp = projNeeded && !expand ? this.addModule('shortcut_proj_mlp', new Linear(dim, dimOut)) : null;
    this.mlp = this.addModule('mlp', new Mlp(attDim, { hiddenFeatures: Math.floor(attDim * (opts.mlpRatio ?? 4)), outFeatures: dimOut }));
  }

  /** Max-pool the spatial tokens of the attention shortcut `[B, (1 +) H * W, C]` to the query grid. */
  private poolShortcut(x: tf.Tensor3D): tf.Tensor3D {
    const p = this.shortcutPool;
    if (!p) return x.clone();
    return tf.tidy(() => {
      const [b, n, c] = x.shape;
      const [h, w] = this.opts.featSize;
      const cls = this.opts.hasClsToken ?? false;
      const sp = (cls ? x.slice([0, 1, 0], [b, n - 1, c]) : x).reshape([b, h, w, c]) as tf.Tensor4D;
      const pooled = tf.maxPool(sp, p.kernel, p.stride, Math.floor(p.kernel / 2)).reshape([b, -1, c]);
      return (cls ? tf.concat([x.slice([0, 0, 0], [b, 1, c]), pooled], 1) : pooled) as tf.Tensor3D;
    });
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    const t = opts.training ?? false;
    return tf.tidy(() => {
      const x3 = x as tf.Tensor3D;
      let xn = this.norm1.forward(x3) as tf.Tensor3D;
      const sc = this.poolShortcut(this.shortcutProjAttn ? (this.shortcutProjAttn.forward(xn) as tf.Tensor3D) : x3);
      const y = tf.add(sc, this.dropPath.forward(this.attn.forward(xn, opts), { training: t })) as tf.Tensor3D;
      xn = this.norm2.forward(y) as tf.Tensor3D;
      const sc2 = this.shortcutProjMlp ? this.shortcutProjMlp.forward(xn) : y;
      return tf.add(sc2, this.dropPath.forward(this.mlp.forward(xn, opts), { training: t })) as tf.Tensor3D;
    });
  }
}

/** Options of {@link MultiScaleVitStage}. */
export interface MultiScaleVitStageOptions extends Omit<MultiScaleBlockOptions, 'dropPath'> {
  depth: number;
  /** Drop-path rate of each block. */
  dropPath: number[];
}

/**
 * An MViTv2 stage: `depth` blocks; the first one strides the queries (and changes the width when
 * `expandAttn`, else the last one does, in its MLP). Keys `blocks.<j>.*` (timm's `MultiScaleVitStage`).
 */
export class MultiScaleVitStage extends Module {
  readonly blocks: ModuleList<MultiScaleBlock>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  /** Output token grid. */
  readonly outSize: [number, number];
  constructor(readonly opts: MultiScaleVitStageOptions) {
    super();
    this.config = { ...opts };
    const { depth, dim, dimOut } = opts;
    const outDims = opts.expandAttn ? new Array(depth).fill(dimOut) : [...new Array(depth - 1).fill(dim), dimOut];
    this.blocks = this.addModule('blocks', new ModuleList<MultiScaleBlock>());
    let d = dim;
    let size = opts.featSize;
    for (let i = 0; i < depth; i++) {
      const { depth: _depth, dropPath, ...rest } = opts;
      void _depth;
      const blk = new MultiScaleBlock({
        ...rest,
        dim: d,
        dimOut: outDims[i],
        featSize: size,
        strideQ: i === 0 ? opts.strideQ : [1, 1],
        dropPath: dropPath[i] ?? 0,
      });
      this.blocks.push(blk);
      d = outDims[i];
      size = blk.outSize;
    }
    this.outSize = size;
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      let y = x as tf.Tensor3D;
      for (const b of this.blocks.items) y = maybeCheckpoint(this.gradCheckpointing, opts, b, y, (u) => b.forward(u, opts));
      return y === x ? (y.clone() as tf.Tensor3D) : y;
    });
  }
}
