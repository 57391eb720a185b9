import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from '../layers/conv2d.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions, Module, ModuleList } from '../layers/module.js';
import { ConvModule, ConvModuleNorm } from './convModule.js';
import { checkFeatureMaps, checkLevelInfo, LevelInfo } from './featureChecks.js';
import { PPM } from './ppm.js';
import { dropout2d } from './dropout2d.js';

/** Options of {@link uperNet} (mmseg's `UPerHead` arguments, camelCase). */
export interface UperNetOptions {
  /** Channels of each input level, finest first. */
  inChannels: number[];
  /** Width of the head (mmseg's `channels`, 512 in the Swin / ConvNeXt ADE20K configs). */
  channels: number;
  numClasses: number;
  /** Pyramid pooling scales on the last level. Default [1, 2, 3, 6]. */
  poolScales?: number[];
  /** Channel dropout (`nn.Dropout2d`) before the classifier, active in training. Default 0.1. */
  dropoutRatio?: number;
  /** Norm of the conv modules: 'bn' (default, mmseg's SyncBN) or 'none'. */
  norm?: ConvModuleNorm;
  /** Input strides, checked against the backbone when given (must increase by 2x). */
  inStrides?: number[];
}

/** Options of {@link UperNet.forward}. */
export interface SegmentationForwardOptions extends ForwardOptions {
  /** Resize the logits bilinearly (align_corners=False) to this `[H, W]`, e.g. the input image size. */
  outSize?: [number, number];
}

/**
 * UPerNet's decode head (Xiao et al. 2018, sec. 3; mmseg's `UPerHead`), the head Swin, SwinV2, CSWin and
 * ConvNeXt V2 report ADE20K with: a pyramid pooling module on the last level (concatenated with it and
 * fused by a 3x3 conv), 1x1 laterals on the other levels, a top-down path with bilinear upsampling
 * (align_corners=False) and addition, 3x3 convs, every level upsampled to the finest and concatenated,
 * a fused 3x3 conv, dropout and a 1x1 classifier. Every conv is conv-BN-ReLU. State-dict keys as mmseg:
 * `psp_modules.<i>.1.*`, `bottleneck.*`, `lateral_convs.<i>.*`, `fpn_convs.<i>.*`, `fpn_bottleneck.*`, `conv_seg.*`.
 */
export class UperNet extends Module {
  /** How {@link attach} feeds it: the list of NHWC maps. */
  readonly inputKind = 'maps' as const;
  /** Its output is per-pixel logits (attach resizes them to the input size). */
  readonly segmentation = true;
  readonly pspModules: PPM;
  readonly bottleneck: ConvModule;
  readonly lateralConvs: ModuleList<ConvModule>;
  readonly fpnConvs: ModuleList<ConvModule>;
  readonly fpnBottleneck: ConvModule;
  readonly convSeg: Conv2d;
  readonly inChannels: number[];
  readonly poolScales: number[];

  constructor(readonly opts: UperNetOptions) {
    super();
    this.config = { ...opts };
    const { inChannels, channels, numClasses } = opts;
    check(
      Array.isArray(inChannels) && inChannels.length > 0 && inChannels.every((c) => Number.isInteger(c) && c > 0),
      () => `uperNet: inChannels must be a non-empty list of positive integers, got ${JSON.stringify(inChannels)}`,
    );
    check(Number.isInteger(channels) && channels > 0, () => `uperNet: channels must be a positive integer, got ${channels}`);
    check(Number.isInteger(numClasses) && numClasses > 0, () => `uperNet: numClasses must be a positive integer, got ${numClasses}`);
    this.poolScales = (opts.poolScales ?? [1, 2, 3, 6]).slice();
    check(
      this.poolScales.length > 0 && this.poolScales.every((s) => Number.isInteger(s) && s > 0),
      () => `uperNet: poolScales must be positive integers, got ${JSON.stringify(opts.poolScales)}`,
    );
    if (opts.inStrides)
      check(
        opts.inStrides.length === inChannels.length,
        () => `uperNet: inStrides lists ${opts.inStrides!.length} strides for ${inChannels.length} levels`,
      );
    this.inChannels = inChannels.slice();
    const norm = opts.norm ?? 'bn';
    const last = inChannels[inChannels.length - 1];
    this.pspModules = this.addModule('psp_modules', new PPM(this.poolScales, last, channels, norm));
    this.bottleneck = this.addModule(
      'bottleneck',
      new ConvModule(last + this.poolScales.length * channels, channels, 3, { padding: 1, norm }),
    );
    this.lateralConvs = this.addModule('lateral_convs', new ModuleList<ConvModule>());
    this.fpnConvs = this.addModule('fpn_convs', new ModuleList<ConvModule>());
    for (const c of inChannels.slice(0, -1)) {
      this.lateralConvs.push(new ConvModule(c, channels, 1, { norm }));
      this.fpnConvs.push(new ConvModule(channels, channels, 3, { padding: 1, norm }));
    }
    this.fpnBottleneck = this.addModule('fpn_bottleneck', new ConvModule(inChannels.length * channels, channels, 3, { padding: 1, norm }));
    this.convSeg = this.addModule('conv_seg', new Conv2d(channels, numClasses, 1));
  }

  /** Check the backbone levels (`featureInfo` entries) against `inChannels` (and `inStrides`). */
  checkLevelInfo(info: LevelInfo[]): void {
    checkLevelInfo(info, this.inChannels, 'uperNet', { pyramid: true, inStrides: this.opts.inStrides });
  }

  /** The PPM branch on the last level: `bottleneck(concat([x, ppm_1(x), ..., ppm_k(x)]))` (mmseg's `psp_forward`). */
  pspForward(feats: tf.Tensor[], opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      const x = feats[feats.length - 1];
      return this.bottleneck.forward(tf.concat([x, ...this.pspModules.forward(x, opts)], 3), opts);
    });
  }

  /** The fused features before the classifier: `[B, H0, W0, channels]` at the finest level's size. */
  forwardFeature(feats: tf.Tensor[], opts: ForwardOptions = {}): tf.Tensor4D {
    checkFeatureMaps(feats, this.inChannels, 'uperNet', true);
    return tf.tidy(() => {
      const lat: tf.Tensor[] = this.lateralConvs.items.map((m, i) => m.forward(feats[i], opts));
      lat.push(this.pspForward(feats, opts));
      const n = lat.length;
      for (let i = n - 1; i > 0; i--) {
        const [, h, w] = lat[i - 1].shape;
        lat[i - 1] = tf.add(lat[i - 1], interpolateNhwc(lat[i], [h, w], { mode: 'bilinear' }));
      }
      const outs: tf.Tensor[] = lat.slice(0, n - 1).map((l, i) => this.fpnConvs.items[i].forward(l, opts));
      outs.push(lat[n - 1]);
      const [, h0, w0] = outs[0].shape;
      for (let i = n - 1; i > 0; i--) outs[i] = interpolateNhwc(outs[i], [h0, w0], { mode: 'bilinear' });
      return this.fpnBottleneck.forward(tf.concat(outs, 3), opts);
    });
  }

  /**
   * `feats`: NHWC maps, finest first, strides increasing by 2x -> logits `[B, H0, W0, numClasses]` at
   * the finest level's size (or `outSize`).
   */
  forward(feats: tf.Tensor[], opts: SegmentationForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      const f = dropout2d(this.forwardFeature(feats, opts), this.opts.dropoutRatio ?? 0.1, opts.training ?? false);
      const logits = this.convSeg.forward(f);
      return opts.outSize ? interpolateNhwc(logits, opts.outSize, { mode: 'bilinear' }) : logits;
    });
  }
}

/** Build an {@link UperNet} decode head. */
export function uperNet(opts: UperNetOptions): UperNet {
  return new UperNet(opts);
}
