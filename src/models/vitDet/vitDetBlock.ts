import * as tf from '@tensorflow/tfjs';
import { DropPath } from '../../layers/dropPath.js';
import { LayerScale } from '../../layers/layerScale.js';
import { Mlp } from '../../layers/mlp.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
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
export class ViTDetBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: RelPosAttention;
  readonly ls1: LayerScale | null;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  readonly ls2: LayerScale | null;
  readonly dropPath: DropPath;
  constructor(readonly opts: ViTDetBlockOptions) {
    super();
    this.config = { ...opts };
    const { dim, windowSize: ws } = opts;
    const eps = opts.normEps ?? 1e-5;
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, eps));
    this.attn = this.addModule(
      'attn',
      new RelPosAttention({
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
    );
    this.ls1 = opts.initValues ? this.addModule('ls1', new LayerScale(dim, opts.initValues)) : null;
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, eps));
    this.mlp = this.addModule('mlp', new Mlp(dim, { hiddenFeatures: Math.floor(dim * (opts.mlpRatio ?? 4)), drop: opts.projDrop }));
    this.ls2 = opts.initValues ? this.addModule('ls2', new LayerScale(dim, opts.initValues)) : null;
    this.dropPath = new DropPath(opts.dropPath ?? 0);
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const ws = this.opts.windowSize;
      const xn = this.norm1.forward(x);
      // as timm: layer scale and drop path act on the windows (drop path per window), before unpartition
      const branch = (t: tf.Tensor) =>
        this.dropPath.forward(this.ls1 ? this.ls1.forward(this.attn.forward(t, opts)) : this.attn.forward(t, opts), opts);
      let a: tf.Tensor;
      if (ws > 0) {
        const { windows, padded } = windowPartitionPadded(xn, ws);
        a = windowUnpartitionPadded(branch(windows), ws, [h, w], padded);
      } else a = branch(xn);
      const y = tf.add(x, a);
      let m = this.mlp.forward(this.norm2.forward(y), opts);
      if (this.ls2) m = this.ls2.forward(m);
      return tf.add(y, this.dropPath.forward(m, opts)) as tf.Tensor4D;
    });
  }
}
