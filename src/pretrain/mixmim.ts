import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { truncNormal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import { SwinTransformer } from '../models/swin/swinTransformer.js';
import { mixmimLoss, mixWithPartner } from './mixmimLoss.js';
import { MixMIMMask, mixmimMask } from './mixmimMask.js';
import { SeedLike } from './rng.js';
import { sincosPosEmbed2d } from './sincosPosEmbed.js';
import { SwinEncoder } from './swinEncoder.js';
import { TransformerBlock } from '../layers/transformerBlock.js';
import { xavierInitLinears } from './xavierInit.js';

/** Options of {@link mixmim} (the official `MixMIM` decoder and loss arguments, camelCase). */
export interface MixMIMOptions {
  /** Decoder width (default 512). */
  decoderDim?: number;
  /** Decoder transformer blocks (default 8). */
  decoderDepth?: number;
  decoderNumHeads?: number;
  mlpRatio?: number;
  /** Per-patch normalised pixel targets (default true). */
  normPixLoss?: boolean;
  /** Fraction of tokens taken from the partner image (default 0.5). */
  maskRatio?: number;
  rangeMaskRatio?: number;
}

/** Options of a MixMIM forward pass. */
export interface MixMIMForwardOptions extends ForwardOptions {
  /** The batch-shared mask with its per-stage copies (from {@link MixMIM.generateMask}). */
  mask: MixMIMMask;
}

/**
 * MixMIM (Liu et al. 2023) on a Swin / SwinV2 backbone. Image `i` of the batch is mixed with image
 * `B-1-i` at the patch embedding by one batch-shared mask (sec. 3.1), the fixed sin-cos absolute
 * position embedding is added, and in every window attention of stage `s` a token attends only to
 * tokens of its own image (the mask nearest-upsampled to the stage's grid). The light decoder (sec. 3.2)
 * embeds the stride-`encoderStride` tokens, fills the other image's positions with a mask token, runs
 * both unmixing sequences (`2B`) through transformer blocks and predicts the `stride^2 * C` pixels of
 * every token; {@link mixmimLoss} reconstructs both images. State-dict keys: the backbone's under
 * `encoder.*`, then the official `absolute_pos_embed`, `mask_token`, `decoder_pos_embed`,
 * `decoder_embed`, `decoder_blocks.i.*`, `decoder_norm`, `decoder_pred` (the position embeddings are
 * frozen parameters, as in the reference). The backbone must have no classifier.
 */
export class MixMIM extends Module {
  readonly encoder: SwinEncoder;
  readonly absolutePosEmbed: Parameter;
  readonly maskToken: Parameter;
  readonly decoderPosEmbed: Parameter;
  readonly decoderEmbed: Linear;
  readonly decoderBlocks: TransformerBlock[] = [];
  readonly decoderNorm: LayerNorm;
  readonly decoderPred: Linear;
  readonly opts: Required<MixMIMOptions>;
  readonly imgSize: [number, number];

  constructor(
    readonly backbone: SwinTransformer,
    opts: MixMIMOptions = {},
  ) {
    super();
    this.config = { ...opts };
    check(backbone instanceof SwinTransformer, () => `MixMIM needs a Swin / SwinV2 backbone, got ${(backbone as object).constructor.name}`);
    check(
      backbone.numClasses === 0,
      () =>
        `MixMIM needs a backbone without classifier (its head would get no gradient): build it with numClasses: 0, got numClasses ${backbone.numClasses}`,
    );
    this.opts = {
      decoderDim: opts.decoderDim ?? 512,
      decoderDepth: opts.decoderDepth ?? 8,
      decoderNumHeads: opts.decoderNumHeads ?? 16,
      mlpRatio: opts.mlpRatio ?? 4,
      normPixLoss: opts.normPixLoss ?? true,
      maskRatio: opts.maskRatio ?? 0.5,
      rangeMaskRatio: opts.rangeMaskRatio ?? 0,
    };
    this.encoder = new SwinEncoder(backbone);
    this.imgSize = backbone.imgSize;
    const grids = this.encoder.stageGrids(this.imgSize[0], this.imgSize[1]);
    const last = grids[grids.length - 1];
    const d = this.opts.decoderDim;
    this.addModule('encoder', backbone);
    this.absolutePosEmbed = this.addParameter('absolute_pos_embed', sincosPosEmbed2d(backbone.dims[0], grids[0]), undefined, false);
    this.maskToken = this.addParameter('mask_token', truncNormal([1, 1, d], 0.02));
    this.decoderPosEmbed = this.addParameter('decoder_pos_embed', sincosPosEmbed2d(d, last), undefined, false);
    this.decoderEmbed = this.addModule('decoder_embed', new Linear(this.encoder.numFeatures, d));
    const blocks = this.addModule('decoder_blocks', new ModuleList<TransformerBlock>());
    for (let i = 0; i < this.opts.decoderDepth; i++) {
      this.decoderBlocks.push(
        blocks.push(
          new TransformerBlock({ dim: d, numHeads: this.opts.decoderNumHeads, mlpRatio: this.opts.mlpRatio, qkvBias: true, normEps: 1e-5 }),
        ),
      );
    }
    this.decoderNorm = this.addModule('decoder_norm', new LayerNorm(d, 1e-5));
    this.decoderPred = this.addModule('decoder_pred', new Linear(d, this.encoder.stride ** 2 * backbone.inChans));
    xavierInitLinears(this, [backbone]);
  }

  /** Trained without weight decay (with the encoder's own `noWeightDecay()`): the mask token. */
  noWeightDecay(): string[] {
    return ['mask_token'];
  }

  /** Output stride of the encoder: the reconstruction's patch size. */
  get encoderStride(): number {
    return this.encoder.stride;
  }

  /** A mask for this model's geometry (batch-shared, with its per-stage copies). */
  generateMask(seed?: SeedLike): MixMIMMask {
    return mixmimMask({
      inputSize: this.imgSize,
      encoderStride: this.encoderStride,
      numStages: this.backbone.layers.length,
      maskRatio: this.opts.maskRatio,
      rangeMaskRatio: this.opts.rangeMaskRatio,
      seed,
    });
  }

  private checkInputs(x: tf.Tensor, mask: MixMIMMask): void {
    check(x.rank === 4, () => `MixMIM expects NHWC images [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const [b, H, W] = x.shape;
    check(b % 2 === 0, () => `MixMIM needs an even batch (image i is mixed with image B-1-i), got B = ${b}`);
    check(
      H === this.imgSize[0] && W === this.imgSize[1],
      () => `MixMIM expects ${this.imgSize.join('x')} images (the backbone's imgSize), got ${H}x${W}`,
    );
    const grids = this.encoder.stageGrids(H, W);
    check(
      mask.stageMasks.length === grids.length,
      () => `expected a mask with ${grids.length} stage copies, got ${mask.stageMasks.length}`,
    );
    const last = grids[grids.length - 1];
    check(
      mask.mask.rank === 2 && mask.mask.shape[0] === last[0] && mask.mask.shape[1] === last[1],
      () => `expected a mask grid [${last.join(', ')}] at stride ${this.encoderStride}, got [${mask.mask.shape.join(', ')}]`,
    );
  }

  /**
   * The mixed encoder's features after the final norm, NHWC `[B, H/stride, W/stride, C]`: sample `i`
   * holds image `i`'s tokens where the mask is 0 and image `B-1-i`'s where it is 1.
   */
  forwardEncoder(x: tf.Tensor, opts: MixMIMForwardOptions): tf.Tensor4D {
    this.checkInputs(x, opts.mask);
    const m = opts.mask;
    return tf.tidy(() => {
      const [g0h, g0w] = m.stageMasks[0].shape;
      const pos = this.absolutePosEmbed.value.reshape([1, g0h, g0w, -1]);
      const embedHook = (t: tf.Tensor4D) => tf.add(mixWithPartner(t, m.stageMasks[0]), pos);
      return this.encoder.forward(x, { ...opts, embedHook, groups: m.stageMasks });
    });
  }

  /** The decoder on the mixed features: `[2B, L, stride^2 * C]` (first B: images `i`, last B: partners). */
  forwardDecoder(z: tf.Tensor4D, mask: MixMIMMask, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, h, w, c] = z.shape;
      const l = h * w;
      let y = this.decoderEmbed.forward(z.reshape([b, l, c]));
      const m = mask.mask.toFloat().reshape([1, l, 1]);
      const tok = this.maskToken.value;
      const x1 = tf.add(tf.mul(y, tf.sub(1, m)), tf.mul(tok, m));
      const x2 = tf.add(tf.mul(y, m), tf.mul(tok, tf.sub(1, m)));
      y = tf.add(tf.concat([x1, x2], 0), this.decoderPosEmbed.value);
      for (const blk of this.decoderBlocks) y = blk.forward(y, opts);
      return this.decoderPred.forward(this.decoderNorm.forward(y)) as tf.Tensor3D;
    });
  }

  /** The dual reconstruction `[2B, L, stride^2 * C]`. */
  forward(x: tf.Tensor, opts: MixMIMForwardOptions): tf.Tensor3D {
    return tf.tidy(() => this.forwardDecoder(this.forwardEncoder(x, opts), opts.mask, opts));
  }

  /** The MixMIM loss of a batch ({@link mixmimLoss}). */
  loss(x: tf.Tensor, opts: MixMIMForwardOptions): tf.Scalar {
    return tf.tidy(() =>
      mixmimLoss(x, this.forward(x, opts), opts.mask.mask, { patchSize: this.encoderStride, normPixLoss: this.opts.normPixLoss }),
    );
  }

  override dispose(): void {
    this.encoder.dispose();
    super.dispose();
  }
}

/** Wrap a Swin / SwinV2 backbone (built with `numClasses: 0`) for MixMIM pretraining. */
export function mixmim(backbone: SwinTransformer, opts: MixMIMOptions = {}): MixMIM {
  return new MixMIM(backbone, opts);
}
