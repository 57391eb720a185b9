import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { normal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import { TransformerBlock } from '../layers/transformerBlock.js';
import { Backbone } from '../models/backbone.js';
import { fcmaeMask } from './fcmaeMask.js';
import { maskedTokenMse } from './fcmaeLoss.js';
import { hogTargets } from './hog.js';
import { MaskedEncoder } from './maskedEncoder.js';
import { repeatMask } from './maskUtils.js';
import { SeedLike } from './rng.js';
import { maskedEncoderFor } from './simmim.js';
import { xavierInitLinears } from './xavierInit.js';

/** Options of {@link fastmim} (FastMIM's `PretrainSwin` / `main_pretrain.py` arguments, camelCase). */
export interface FastMIMOptions {
  /** Decoder width (default 256, the script's `--decoder_embed_dim`). */
  decoderDim?: number;
  /** Transformer blocks of the decoder (default 4); 0 = a LayerNorm + linear head on the encoder features. */
  decoderDepth?: number;
  /** Default `decoderDim / 32`, as the reference. */
  decoderNumHeads?: number;
  mlpRatio?: number;
  /** Fraction of encoder-stride blocks masked per sample (default 0.75). */
  maskRatio?: number;
  /** HOG orientation bins (9) and cell size (8). */
  hogBins?: number;
  hogPool?: number;
  /** L2-normalise the HOG histograms (default true, FastMIM's setting). */
  normalizeHog?: boolean;
}

/** Options of a FastMIM forward pass. */
export interface FastMIMForwardOptions extends ForwardOptions {
  /** `[B, H/stride, W/stride]` 0/1 per sample, 1 = masked (from {@link FastMIM.generateMask}). */
  mask: tf.Tensor;
}

/**
 * FastMIM (Guo et al. 2022): masked image modeling on low-resolution inputs (e.g. 128 px instead of 224,
 * sec. 3.1) with HOG targets (sec. 3.2). As the official `PretrainSwin`: the masked encoder-stride blocks
 * of the image are replaced by a learnable pixel-space mask token `[1, C, 1, 1]`, the encoder runs on the
 * masked image, a light decoder (linear embed, transformer blocks, LayerNorm, linear) predicts for every
 * encoder token the HOG histograms of its `stride/pool x stride/pool` cells (`C * nbins` values per cell,
 * in (channel, cell row, cell column) order), and the loss is the MSE on the masked tokens. Works on any
 * backbone with a {@link MaskedEncoder} adapter (Swin, SwinV2, ViT) and at any input size the backbone
 * accepts, so FastMIM-P's progressive resolutions ({@link progressiveResolution}) need no rebuild.
 * State-dict keys: `encoder.*`, `mask_token`, `decoder_embed`, `decoder_blocks.i.*`, `decoder_norm`,
 * `decoder_pred`.
 */
export class FastMIM extends Module {
  readonly encoder: MaskedEncoder;
  readonly maskToken: Parameter;
  readonly decoderEmbed: Linear | null;
  readonly decoderBlocks: TransformerBlock[] = [];
  readonly decoderNorm: LayerNorm;
  readonly decoderPred: Linear;
  readonly opts: Required<FastMIMOptions>;
  /** HOG cells per token side (`stride / hogPool`). */
  readonly cellsPerToken: number;

  constructor(
    readonly backbone: Backbone,
    opts: FastMIMOptions = {},
  ) {
    super();
    this.config = { ...opts };
    check(
      backbone.numClasses === 0,
      () =>
        `FastMIM needs a backbone without classifier (its head would get no gradient): build it with numClasses: 0, got numClasses ${backbone.numClasses}`,
    );
    this.encoder = maskedEncoderFor(backbone);
    const decoderDim = opts.decoderDim ?? 256;
    this.opts = {
      decoderDim,
      decoderDepth: opts.decoderDepth ?? 4,
      decoderNumHeads: opts.decoderNumHeads ?? Math.max(1, Math.floor(decoderDim / 32)),
      mlpRatio: opts.mlpRatio ?? 4,
      maskRatio: opts.maskRatio ?? 0.75,
      hogBins: opts.hogBins ?? 9,
      hogPool: opts.hogPool ?? 8,
      normalizeHog: opts.normalizeHog ?? true,
    };
    const s = this.encoder.stride;
    const pool = this.opts.hogPool;
    check(
      s % pool === 0,
      () => `the encoder stride ${s} is not divisible by the HOG pool size ${pool}: every token must cover whole HOG cells`,
    );
    this.cellsPerToken = s / pool;
    this.addModule('encoder', backbone);
    const c = this.encoder.inChans;
    this.maskToken = this.addParameter('mask_token', normal([1, c, 1, 1], 0.02));
    const d = this.opts.decoderDepth > 0 ? decoderDim : this.encoder.numFeatures;
    this.decoderEmbed =
      this.opts.decoderDepth > 0 ? this.addModule('decoder_embed', new Linear(this.encoder.numFeatures, decoderDim)) : null;
    const blocks = this.addModule('decoder_blocks', new ModuleList<TransformerBlock>());
    for (let i = 0; i < this.opts.decoderDepth; i++) {
      this.decoderBlocks.push(
        blocks.push(
          new TransformerBlock({
            dim: decoderDim,
            numHeads: this.opts.decoderNumHeads,
            mlpRatio: this.opts.mlpRatio,
            qkvBias: true,
            normEps: 1e-5,
          }),
        ),
      );
    }
    this.decoderNorm = this.addModule('decoder_norm', new LayerNorm(d, 1e-5));
    this.decoderPred = this.addModule('decoder_pred', new Linear(d, this.cellsPerToken ** 2 * c * this.opts.hogBins));
    xavierInitLinears(this, [backbone]);
  }

  /** Trained without weight decay (with the encoder's own `noWeightDecay()`): the mask token. */
  noWeightDecay(): string[] {
    return ['mask_token'];
  }

  /** Output stride of the encoder: the mask block size. */
  get encoderStride(): number {
    return this.encoder.stride;
  }

  private checkMask(x: tf.Tensor, mask: tf.Tensor): void {
    this.encoder.checkInput(x);
    const [b, H, W] = x.shape as number[];
    const s = this.encoderStride;
    check(H % s === 0 && W % s === 0, () => `FastMIM: image size ${H}x${W} is not divisible by the encoder stride ${s}`);
    check(
      mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === H / s && mask.shape[2] === W / s,
      () => `FastMIM: expected a mask [${b}, ${H / s}, ${W / s}] (image ${H}x${W} / stride ${s}), got shape [${mask.shape.join(', ')}]`,
    );
  }

  /** Per-token predictions `[B, L, (stride/pool)^2 * C * nbins]` from the masked image. */
  forward(x: tf.Tensor, opts: FastMIMForwardOptions): tf.Tensor3D {
    this.checkMask(x, opts.mask);
    return tf.tidy(() => {
      const [b, H, W, c] = x.shape as number[];
      const m = repeatMask(opts.mask.toFloat() as tf.Tensor3D, this.encoderStride).reshape([b, H, W, 1]);
      const masked = tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(this.maskToken.value.reshape([1, 1, 1, c]), m));
      const z = this.encoder.encode(masked, null, opts);
      const [, h, w, f] = z.shape;
      let y: tf.Tensor = z.reshape([b, h * w, f]);
      if (this.decoderEmbed) y = this.decoderEmbed.forward(y);
      for (const blk of this.decoderBlocks) y = blk.forward(y, opts);
      return this.decoderPred.forward(this.decoderNorm.forward(y)) as tf.Tensor3D;
    });
  }

  /**
   * The HOG target of every token `[B, L, (stride/pool)^2 * C * nbins]`: {@link hogTargets} of the
   * unmasked image, each token's cells in (channel * nbins + bin, cell row, cell column) order (the
   * reference's `unfold` order).
   */
  hogTarget(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const hog = hogTargets(x, { nbins: this.opts.hogBins, pool: this.opts.hogPool, normalize: this.opts.normalizeHog });
      const [b, hh, ww, k] = hog.shape;
      const u = this.cellsPerToken;
      const h = hh / u;
      const w = ww / u;
      return hog
        .reshape([b * h, u, w, u * k])
        .transpose([0, 2, 1, 3]) // [B*h, w, u_row, u_col * k]
        .reshape([b * h * w, u * u, k])
        .transpose([0, 2, 1]) // [tokens, k, u_row * u_col]
        .reshape([b, h * w, k * u * u]) as tf.Tensor3D;
    });
  }

  /** The FastMIM loss: MSE between predicted and HOG targets on the masked tokens. */
  loss(x: tf.Tensor, opts: FastMIMForwardOptions): tf.Scalar {
    return tf.tidy(() => {
      const pred = this.forward(x, opts);
      const [b, l] = pred.shape;
      return maskedTokenMse(pred, this.hogTarget(x), opts.mask.reshape([b, l]));
    });
  }

  /** Per-sample random masks of encoder-stride blocks (`floor(L * (1 - maskRatio))` kept), for `inputSize` images. */
  generateMask(batch: number, inputSize: number | [number, number], seed?: SeedLike): tf.Tensor3D {
    return fcmaeMask({ batch, inputSize, patchSize: this.encoderStride, maskRatio: this.opts.maskRatio, seed });
  }

  override dispose(): void {
    this.encoder.dispose();
    super.dispose();
  }
}

/** Wrap a backbone (Swin, SwinV2 or ViT, built with `numClasses: 0`) for FastMIM pretraining. */
export function fastmim(backbone: Backbone, opts: FastMIMOptions = {}): FastMIM {
  return new FastMIM(backbone, opts);
}

/** FastMIM-P's resolution schedule (the reference's `--mim_pt_size` / `--mim_pt_step`). */
export interface ProgressiveSchedule {
  /** Input sizes, increasing. */
  sizes: number[];
  /** Epoch (or step) at which each size starts; `starts[0]` must be 0. */
  starts: number[];
}

/**
 * FastMIM-P (Guo et al. 2022, sec. 4.4 "progressive"): the input size used at `epoch`: `sizes[i]` for the
 * last `i` with `epoch >= starts[i]`.
 */
export function progressiveResolution(epoch: number, schedule: ProgressiveSchedule): number {
  const { sizes, starts } = schedule;
  check(
    sizes.length > 0 && sizes.length === starts.length,
    () => `progressive schedule needs one start per size, got ${sizes.length} sizes and ${starts.length} starts`,
  );
  check(
    starts[0] === 0 && starts.every((s, i) => i === 0 || s > starts[i - 1]),
    () => `progressive schedule starts must begin at 0 and increase, got [${starts.join(', ')}]`,
  );
  let idx = 0;
  for (let i = 0; i < starts.length; i++) if (epoch >= starts[i]) idx = i;
  return sizes[idx];
}

/**
 * Resize a batch of NHWC images to `size x size` (bilinear, half-pixel centres as PyTorch's
 * `interpolate(align_corners=False)`), e.g. to feed FastMIM its low or progressive resolution.
 */
export function resizeImages(images: tf.Tensor4D, size: number): tf.Tensor4D {
  check(Number.isInteger(size) && size > 0, () => `size must be a positive integer, got ${size}`);
  if (images.shape[1] === size && images.shape[2] === size) return images.clone();
  return tf.image.resizeBilinear(images, [size, size], false, true);
}
