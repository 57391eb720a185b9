import * as tf from '@tensorflow/tfjs';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions } from '../../layers/module.js';
import { PreNormBlock } from '../../layers/preNormBlock.js';
import { windowPartitionPadded, windowUnpartitionPadded } from '../../layers/paddedWindows.js';
import { RelPosAttention } from '../../layers/relPosAttention.js';

/** Options of {@link ViTDetBlock} (timm `vision_transformer_sam.Block` arguments). */
export interface ViTDetBlockOptions {
  dim: number;
  numHeads: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  qkNorm?: boolean;
  projDrop?: number;
  attnDrop?: number;
  initValues?: number | null;
  dropPath?: number;
  useRelPos?: boolean;
  /** Window size; 0 = global attention over the whole grid. */
  windowSize: number;
  /** The model's token grid `[h, w]` (sizes the global blocks' rel-pos tables). */
  inputSize: [number, number];
  /** LayerNorm epsilon (SAM: 1e-5, PyTorch's `nn.LayerNorm` default). */
  normEps?: number;
}

/**
 * The ViTDet / SAM transformer block (Li et al. 2022, sec. 3): pre-norm attention that is either
 * windowed (zero-padded to a multiple of the window, non-overlapping, no shift) or global, with
 * decomposed relative positions, then the MLP; both residual. NHWC `[B, H, W, C]`. State-dict keys
 * `norm1`, `attn.*`, `ls1.gamma`, `norm2`, `mlp.fc1/fc2`, `ls2.gamma`.
 */
export class ViTDetBlock extends PreNormBlock<RelPosAttention, Mlp> {
  constructor(readonly opts: ViTDetBlockOptions) {
    const { dim, windowSize: ws } = opts;
    const eps = opts.normEps ?? 1e-5;
    super({
      dim,
      normEps: eps,
      initValues: opts.initValues,
      dropPath: opts.dropPath,
      attn: new RelPosAttention({
        dim,
        numHeads: opts.numHeads,
        qkvBias: opts.qkvBias ?? true,
        qkNorm: opts.qkNorm,
        useRelPos: opts.useRelPos,
        inputSize: ws > 0 ? [ws, ws] : opts.inputSize,
        attnDrop: opts.attnDrop,
        projDrop: opts.projDrop,
        normEps: eps,
      }),
      mlp: new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), drop: opts.projDrop }),
    });
    this.config = { ...opts };
  }

  /** As timm: layer scale and drop path act on the windows (drop path per window), before unpartition. */
  protected override mix(xn: tf.Tensor, opts: ForwardOptions): tf.Tensor {
    const ws = this.opts.windowSize;
    if (ws <= 0) return this.attnBranch(xn, opts);
    const [, h, w] = xn.shape;
    const { windows, padded } = windowPartitionPadded(xn, ws);
    return windowUnpartitionPadded(this.attnBranch(windows, opts), ws, [h, w], padded);
  }

  override forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return super.forward(x, opts) as tf.Tensor4D;
  }
}
