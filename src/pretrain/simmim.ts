import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { Conv2d } from '../layers/conv2d.js';
import { truncNormal } from '../layers/init.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { Backbone } from '../models/backbone.js';
import { SwinTransformer } from '../models/swin/swinTransformer.js';
import { VisionTransformer } from '../models/vit/visionTransformer.js';
import { MaskedEncoder } from './maskedEncoder.js';
import { pixelShuffle } from './pixelShuffle.js';
import { SeedLike } from './rng.js';
import { simmimLoss } from './simmimLoss.js';
import { simmimMasks } from './simmimMask.js';
import { swinMaskedEncoder } from './swinMaskedEncoder.js';
import { vitMaskedEncoder } from './vitMaskedEncoder.js';

/** Options of {@link simmim}. */
export interface SimMIMOptions {
  /** Output stride of the encoder (default: the backbone's: 32 for a 4-stage Swin, the patch size for ViT). */
  encoderStride?: number;
  /** Block size of the masks {@link SimMIM.generateMask} draws (default 32, as SimMIM). */
  maskPatchSize?: number;
  /** Fraction of blocks masked by {@link SimMIM.generateMask} (default 0.6). */
  maskRatio?: number;
}

/** Options of a SimMIM forward pass. */
export interface SimMIMForwardOptions extends ForwardOptions {
  /** `[B, H/patchSize, W/patchSize]` 0/1, 1 = masked (e.g. from {@link SimMIM.generateMask}). */
  mask: tf.Tensor;
}

/** Adapters for the families SimMIM supports; others register through {@link registerSimMIMEncoder}. */
const adapters: ((b: Backbone) => MaskedEncoder | null)[] = [
  (b) => (b instanceof SwinTransformer ? swinMaskedEncoder(b) : null),
  (b) => (b instanceof VisionTransformer ? vitMaskedEncoder(b) : null),
];

/** Let another backbone family take part in SimMIM / FastMIM. */
export function registerSimMIMEncoder(adapter: (b: Backbone) => MaskedEncoder | null): void {
  adapters.push(adapter);
}

/** The {@link MaskedEncoder} adapter for a backbone, or a clear error. */
export function maskedEncoderFor(b: Backbone): MaskedEncoder {
  for (const a of adapters) {
    const e = a(b);
    if (e) return e;
  }
  throw new VisBackbonesError(
    `no masked-image-modeling adapter for ${b.constructor.name}: supported are Swin, SwinV2, ViT${adapters.length > 2 ? ' and the registered families' : ''}`,
  );
}

/**
 * SimMIM (Xie et al. 2022): a learnable mask token replaces the patch embeddings of masked patches
 * before the encoder's stages (sec. 3.1), a one-layer head (1x1 conv to `stride^2 * C` channels +
 * pixel shuffle, sec. 3.2) predicts the raw pixels, and the loss is the L1 distance on the masked
 * pixels ({@link simmimLoss}, sec. 3.3). State-dict keys as the official code: `encoder.*` (the
 * backbone's own keys), `encoder.mask_token` `[1, 1, embedDim]`, `decoder.0.weight` / `decoder.0.bias`.
 * The backbone must have no classifier (`numClasses: 0`).
 */
export class SimMIM extends Module {
  readonly encoder: MaskedEncoder;
  readonly maskToken: Parameter;
  readonly decoderConv: Conv2d;
  readonly encoderStride: number;
  readonly opts: Required<SimMIMOptions>;

  constructor(
    readonly backbone: Backbone,
    opts: SimMIMOptions = {},
  ) {
    super();
    this.config = { ...opts };
    check(
      backbone.numClasses === 0,
      () =>
        `SimMIM needs a backbone without classifier (its head would get no gradient): build it with numClasses: 0, got numClasses ${backbone.numClasses}`,
    );
    this.encoder = maskedEncoderFor(backbone);
    this.encoderStride = opts.encoderStride ?? this.encoder.stride;
    check(
      this.encoderStride === this.encoder.stride,
      () => `encoderStride ${this.encoderStride} differs from the backbone's output stride ${this.encoder.stride}`,
    );
    this.opts = { encoderStride: this.encoderStride, maskPatchSize: opts.maskPatchSize ?? 32, maskRatio: opts.maskRatio ?? 0.6 };
    this.addModule('encoder', backbone);
    this.maskToken = this.addParameter('mask_token', truncNormal([1, 1, this.encoder.embedDim], 0.02));
    const dec = this.addModule('decoder', new ModuleList<Conv2d>());
    this.decoderConv = dec.push(new Conv2d(this.encoder.numFeatures, this.encoderStride ** 2 * this.encoder.inChans, 1));
  }

  /** The official keys: the mask token lives in the encoder (`encoder.mask_token`). */
  override namedParameters(prefix = ''): [string, Parameter][] {
    return super.namedParameters(prefix).map(([n, p]) => [n === `${prefix}mask_token` ? `${prefix}encoder.mask_token` : n, p]);
  }

  /** Trained without weight decay (with the encoder's own `noWeightDecay()`): the mask token (official SimMIM). */
  noWeightDecay(): string[] {
    return ['encoder.mask_token'];
  }

  /** Patch size of the mask grid (the backbone's patch size). */
  get patchSize(): number {
    return this.encoder.patchSize;
  }

  private checkMask(x: tf.Tensor, mask: tf.Tensor): void {
    this.encoder.checkInput(x);
    const [b, H, W] = x.shape as number[];
    const p = this.patchSize;
    check(
      mask.rank === 3 && mask.shape[0] === b && (mask.shape[1] as number) * p === H && (mask.shape[2] as number) * p === W,
      () => `SimMIM: expected a mask [${b}, ${H / p}, ${W / p}] (image ${H}x${W} / patch ${p}), got shape [${mask.shape.join(', ')}]`,
    );
  }

  /** Encoder features with masked patch embeddings replaced by the mask token: NHWC at the encoder stride. */
  forwardEncoder(x: tf.Tensor, opts: SimMIMForwardOptions): tf.Tensor4D {
    this.checkMask(x, opts.mask);
    return tf.tidy(() => {
      const edit = (t: tf.Tensor4D) => {
        const w = opts.mask.toFloat().expandDims(-1);
        return tf.add(tf.mul(t, tf.sub(1, w)), tf.mul(this.maskToken.value.reshape([1, 1, 1, -1]), w));
      };
      return this.encoder.encode(x, edit, opts);
    });
  }

  /** The reconstruction, NHWC `[B, H, W, C]` (decoder output for every pixel). */
  forward(x: tf.Tensor, opts: SimMIMForwardOptions): tf.Tensor4D {
    return tf.tidy(() => pixelShuffle(this.decoderConv.forward(this.forwardEncoder(x, opts)), this.encoderStride));
  }

  /** The SimMIM loss of a batch (masked L1, {@link simmimLoss}). */
  loss(x: tf.Tensor, opts: SimMIMForwardOptions): tf.Scalar {
    return tf.tidy(() => simmimLoss(x, this.forward(x, opts), opts.mask, { patchSize: this.patchSize }));
  }

  /** A batch of SimMIM masks for `inputSize` images with this model's geometry and mask options. */
  generateMask(batch: number, inputSize: number, seed?: SeedLike): tf.Tensor3D {
    return simmimMasks(batch, {
      inputSize,
      maskPatchSize: this.opts.maskPatchSize,
      modelPatchSize: this.patchSize,
      maskRatio: this.opts.maskRatio,
      seed,
    });
  }

  override dispose(): void {
    this.encoder.dispose();
    super.dispose();
  }
}

/** Wrap a backbone (Swin, SwinV2 or ViT, built with `numClasses: 0`) for SimMIM pretraining. */
export function simmim(backbone: Backbone, opts: SimMIMOptions = {}): SimMIM {
  return new SimMIM(backbone, opts);
}
