import * as tf from '@tensorflow/tfjs';
import { maybeCheckpoint } from '../models/checkpoint.js';
import { check } from '../errors.js';
import { getActivation } from '../layers/activations.js';
import { Conv2d } from '../layers/conv2d.js';
import { ConvNeXtBlock } from '../layers/convNextBlock.js';
import { GlobalResponseNormMlp } from '../layers/grnMlp.js';
import { normal } from '../layers/init.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { ConvNeXt } from '../models/convnextV2/convnext.js';
import { fcmaeLoss } from './fcmaeLoss.js';
import { fcmaeMask } from './fcmaeMask.js';
import { repeatMask } from './maskUtils.js';
import { SeedLike } from './rng.js';

/** Options of {@link fcmae} (the official `FCMAE` arguments, camelCase). */
export interface FCMAEOptions {
  /** Decoder width (default 512) and ConvNeXt blocks (default 1). */
  decoderDim?: number;
  decoderDepth?: number;
  /** Fraction of patches removed per sample (default 0.6). */
  maskRatio?: number;
  /** Per-patch normalised pixel targets (default true, the official script's setting). */
  normPixLoss?: boolean;
}

/** Options of an FCMAE forward pass. */
export interface FCMAEForwardOptions extends ForwardOptions {
  /** `[B, H/stride, W/stride]` 0/1 per sample, 1 = removed (from {@link FCMAE.generateMask}). */
  mask: tf.Tensor;
}

/**
 * FCMAE, the fully convolutional masked autoencoder of ConvNeXt V2 (Woo et al. 2023, sec. 3). The
 * encoder's sparse convolutions are emulated densely (sec. 3.1: "a sparse convolution is a dense
 * convolution with binary masking before and after"): the patch mask, nearest-upsampled to each stage,
 * zeroes the removed positions after the stem, after every downsampling layer, after every depthwise
 * convolution, before every GRN (so its global norms see only visible positions, as the sparse GRN) and
 * after every block, so removed pixels never influence the visible features. The decoder (sec. 3.2) is a
 * 1x1 projection, a mask token filling the removed positions, `decoderDepth` ConvNeXt V2 blocks and a
 * 1x1 prediction of the `p*p*C` pixels of every patch, scored by {@link fcmaeLoss}. State-dict keys:
 * the backbone's under `encoder.*` (build it with `featuresOnly: true`), then `proj`, `mask_token` `[1, D, 1, 1]`, `decoder.i.*` (timm's
 * block names: `conv_dw`, `norm`, `mlp.fc1`, `mlp.grn`, `mlp.fc2`), `pred`. Note: the official sparse
 * GRN pools its norms over the visible positions of the whole batch; this emulation pools per sample,
 * as the dense ConvNeXt V2 that is fine-tuned afterwards.
 */
export class FCMAE extends Module {
  readonly proj: Conv2d;
  readonly maskToken: Parameter;
  readonly decoder: ConvNeXtBlock[] = [];
  readonly pred: Conv2d;
  readonly opts: Required<FCMAEOptions>;

  constructor(
    readonly backbone: ConvNeXt,
    opts: FCMAEOptions = {},
  ) {
    super();
    this.config = { ...opts };
    check(backbone instanceof ConvNeXt, () => `FCMAE needs a ConvNeXt (V2) backbone, got ${(backbone as object).constructor.name}`);
    check(
      backbone.head === null,
      () => `FCMAE needs a backbone without head (its parameters would get no gradient): build it with featuresOnly: true`,
    );
    this.opts = {
      decoderDim: opts.decoderDim ?? 512,
      decoderDepth: opts.decoderDepth ?? 1,
      maskRatio: opts.maskRatio ?? 0.6,
      normPixLoss: opts.normPixLoss ?? true,
    };
    const d = this.opts.decoderDim;
    this.addModule('encoder', backbone);
    this.proj = this.addModule('proj', new Conv2d(backbone.numFeatures, d, 1));
    this.maskToken = this.addParameter('mask_token', normal([1, d, 1, 1], 0.02));
    const dec = this.addModule('decoder', new ModuleList<ConvNeXtBlock>());
    for (let i = 0; i < this.opts.decoderDepth; i++)
      this.decoder.push(dec.push(new ConvNeXtBlock({ dim: d, useGrn: true, lsInitValue: null, normEps: 1e-6 })));
    this.pred = this.addModule('pred', new Conv2d(d, this.stride ** 2 * backbone.inChans, 1));
  }

  /** Trained without weight decay (with the encoder's own `noWeightDecay()`): the mask token. */
  noWeightDecay(): string[] {
    return ['mask_token'];
  }

  /** Total stride of the encoder = the mask patch size (32 for the standard ConvNeXt). */
  get stride(): number {
    return this.backbone.featureInfo[this.backbone.featureInfo.length - 1].reduction;
  }

  private checkMask(x: tf.Tensor, mask: tf.Tensor): void {
    this.backbone.checkInput(x);
    const [b, H, W] = x.shape as number[];
    const s = this.stride;
    check(H % s === 0 && W % s === 0, () => `FCMAE: image size ${H}x${W} is not divisible by the encoder stride ${s}`);
    check(
      mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === H / s && mask.shape[2] === W / s,
      () => `FCMAE: expected a mask [${b}, ${H / s}, ${W / s}] (image ${H}x${W} / stride ${s}), got shape [${mask.shape.join(', ')}]`,
    );
  }

  /** One ConvNeXt block with the sparse-convolution masking (`keep`: `[B, h, w, 1]`, 1 = visible). */
  private maskedBlock(x: tf.Tensor, blk: ConvNeXtBlock, keep: tf.Tensor, opts: ForwardOptions): tf.Tensor {
    return tf.tidy(() => {
      let y: tf.Tensor = tf.mul(blk.convDw.forward(x), keep);
      y = blk.norm.forward(y);
      if (blk.mlp instanceof GlobalResponseNormMlp) {
        const mlp = blk.mlp;
        const act = getActivation(blk.opts.act ?? 'gelu');
        let h = tf.mul(act(mlp.fc1.forward(y)), keep);
        h = mlp.grn.forward(h);
        y = mlp.fc2.forward(h);
      } else {
        y = blk.mlp.forward(y, opts);
      }
      if (blk.gamma) y = tf.mul(y, blk.gamma.value);
      return tf.mul(tf.add(x, blk.dropPath.forward(y, opts)), keep);
    });
  }

  /**
   * The masked encoder's last-stage map, NHWC `[B, H/stride, W/stride, C]`, zero at removed positions
   * (the sparse tensor made dense).
   */
  forwardEncoder(x: tf.Tensor, opts: FCMAEForwardOptions): tf.Tensor4D {
    this.checkMask(x, opts.mask);
    const enc = this.backbone;
    const n = enc.stages.length;
    return tf.tidy(() => {
      const m = opts.mask.toFloat() as tf.Tensor3D;
      const keepAt = (i: number) => tf.sub(1, repeatMask(m, 2 ** (n - 1 - i))).expandDims(-1);
      let keep = keepAt(0);
      let y: tf.Tensor = tf.mul(enc.stem.forward(x), keep);
      enc.stages.items.forEach((st, i) => {
        if (st.downsample) {
          keep = keepAt(i);
          y = tf.mul(st.downsample.forward(y), keep);
        }
        // the stage's gradient checkpointing holds here too (the keep mask is an input of the recompute)
        for (const blk of st.blocks.items)
          y = maybeCheckpoint(st.gradCheckpointing, opts, blk, y, (u, [k]) => this.maskedBlock(u, blk, k, opts), [keep]);
      });
      return y as tf.Tensor4D;
    });
  }

  /** The decoder: projection, mask tokens at removed positions, ConvNeXt blocks, per-patch pixels `[B, h, w, p*p*C]`. */
  forwardDecoder(z: tf.Tensor4D, mask: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let y: tf.Tensor = this.proj.forward(z);
      const m = mask.toFloat().expandDims(-1);
      y = tf.add(tf.mul(y, tf.sub(1, m)), tf.mul(this.maskToken.value.reshape([1, 1, 1, -1]), m));
      for (const blk of this.decoder) y = blk.forward(y, opts);
      return this.pred.forward(y);
    });
  }

  /** Per-patch pixel predictions `[B, H/stride, W/stride, stride^2 * C]`. */
  forward(x: tf.Tensor, opts: FCMAEForwardOptions): tf.Tensor4D {
    return tf.tidy(() => this.forwardDecoder(this.forwardEncoder(x, opts), opts.mask, opts));
  }

  /** The FCMAE loss ({@link fcmaeLoss}: MSE per patch over the removed patches). */
  loss(x: tf.Tensor, opts: FCMAEForwardOptions): tf.Scalar {
    return tf.tidy(() => fcmaeLoss(x, this.forward(x, opts), opts.mask, { patchSize: this.stride, normPixLoss: this.opts.normPixLoss }));
  }

  /** Per-sample random masks (`floor(L * (1 - maskRatio))` patches kept) for `inputSize` images. */
  generateMask(batch: number, inputSize: number | [number, number], seed?: SeedLike): tf.Tensor3D {
    return fcmaeMask({ batch, inputSize, patchSize: this.stride, maskRatio: this.opts.maskRatio, seed });
  }
}

/** Wrap a ConvNeXt V2 backbone (built with `featuresOnly: true`) for FCMAE pretraining. */
export function fcmae(backbone: ConvNeXt, opts: FCMAEOptions = {}): FCMAE {
  return new FCMAE(backbone, opts);
}
