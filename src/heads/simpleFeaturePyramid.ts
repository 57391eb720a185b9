import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { GELU } from '../layers/activations.js';
import { Conv2d } from '../layers/conv2d.js';
import { ConvTranspose2d } from '../layers/convTranspose2d.js';
import { maxPool2d } from '../layers/maxPool2d.js';
import { Module, ModuleList } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import { checkLevelInfo, isTensor, LevelInfo } from './featureChecks.js';

/** Options of {@link simpleFeaturePyramid} (detectron2's `SimpleFeaturePyramid` arguments). */
export interface SimpleFeaturePyramidOptions {
  /** Channels of the input map (the plain backbone's width). */
  inChans: number;
  /** Channels of every output level. */
  outChans: number;
  /** Per output level: 4 (two 2x transposed convs), 2 (one), 1 (identity) or 0.5 (2x2 max-pool). Default [4, 2, 1, 0.5]. */
  scaleFactors?: number[];
  /** Stride of the input map (default 16); names the levels `simfp_<log2 stride>` and is checked against the backbone. */
  inStride?: number;
  /** 'LN' (default: channel LayerNorm after every conv, convs without bias) or '' (no norm, convs with bias). */
  norm?: 'LN' | '';
  /** LayerNorm epsilon (detectron2's `LayerNorm` default 1e-6). */
  normEps?: number;
  /** Add detectron2's `LastLevelMaxPool`: one more level at twice the last stride (1x1 max-pool, stride 2). */
  topBlock?: boolean;
}

/** detectron2's `Conv2d` with a norm: convolution, then `norm`; keys `weight`, `bias`, `norm.*`. */
class ConvNorm extends Conv2d {
  readonly norm: LayerNorm | null;
  constructor(inChans: number, outChans: number, k: number, padding: number, norm: boolean, eps: number) {
    super(inChans, outChans, k, { padding, bias: !norm });
    this.norm = norm ? this.addModule('norm', new LayerNorm(outChans, eps)) : null;
  }
  override forward(x: tf.Tensor): tf.Tensor4D {
    const y = super.forward(x);
    if (!this.norm) return y;
    const z = this.norm.forward(y) as tf.Tensor4D;
    y.dispose();
    return z;
  }
}

/** `nn.MaxPool2d(k, k)` as a parameter-free sequence member. */
class MaxPool extends Module {
  constructor(readonly k: number) {
    super();
    this.config = { k };
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return maxPool2d(x, this.k, this.k);
  }
}

/**
 * ViTDet's simple feature pyramid (Li et al. 2022, sec. 3 and Fig. 2): from the single stride-`s`
 * map of a plain backbone, build maps at strides `s / scale` — scale 4: two 2x2 stride-2 transposed
 * convs with LayerNorm2d + GELU between them; 2: one; 1: identity; 0.5: 2x2 max-pool — each followed
 * by a 1x1 and a 3x3 conv with LayerNorm2d. Optional extra level by 1x1 max-pool with stride 2.
 * State-dict keys as detectron2: `simfp_<log2 stride>.<i>.*`.
 */
export class SimpleFeaturePyramid extends Module {
  /** How {@link attach} feeds it: one NHWC map. */
  readonly inputKind = 'map' as const;
  readonly stages: ModuleList[] = [];
  readonly scaleFactors: number[];
  readonly inStride: number;
  /** Stride of every output level (including the top block's). */
  readonly outStrides: number[];
  readonly outChans: number;
  readonly inChans: number;

  constructor(readonly opts: SimpleFeaturePyramidOptions) {
    super();
    this.config = { ...opts };
    const dim = opts.inChans;
    this.inChans = dim;
    this.outChans = opts.outChans;
    this.scaleFactors = (opts.scaleFactors ?? [4, 2, 1, 0.5]).slice();
    this.inStride = opts.inStride ?? 16;
    check(
      Number.isInteger(dim) && dim > 0 && Number.isInteger(opts.outChans) && opts.outChans > 0,
      () => `simpleFeaturePyramid: inChans and outChans must be positive integers, got ${dim}, ${opts.outChans}`,
    );
    check(this.scaleFactors.length > 0, () => 'simpleFeaturePyramid: scaleFactors is empty');
    const strides = this.scaleFactors.map((s) => this.inStride / s);
    for (const [i, s] of this.scaleFactors.entries()) {
      check([4, 2, 1, 0.5].includes(s), () => `simpleFeaturePyramid: scaleFactors[${i}] = ${s} is not supported (expected 4, 2, 1 or 0.5)`);
      check(
        Number.isInteger(Math.log2(strides[i])),
        () => `simpleFeaturePyramid: stride ${strides[i]} (inStride ${this.inStride} / scale ${s}) is not a power of 2`,
      );
      check(
        i === 0 || strides[i] === 2 * strides[i - 1],
        () =>
          `simpleFeaturePyramid: output strides [${strides.join(', ')}] must increase by 2x (scaleFactors [${this.scaleFactors.join(', ')}])`,
      );
    }
    const useNorm = (opts.norm ?? 'LN') === 'LN';
    const eps = opts.normEps ?? 1e-6;
    for (const [i, scale] of this.scaleFactors.entries()) {
      const seq = new ModuleList();
      let outDim = dim;
      if (scale === 4) {
        const half = Math.floor(dim / 2);
        seq.push(new ConvTranspose2d(dim, half, 2));
        seq.push(useNorm ? new LayerNorm(half, eps) : new IdentityNorm());
        seq.push(new GELU());
        seq.push(new ConvTranspose2d(half, Math.floor(dim / 4), 2));
        outDim = Math.floor(dim / 4);
      } else if (scale === 2) {
        seq.push(new ConvTranspose2d(dim, Math.floor(dim / 2), 2));
        outDim = Math.floor(dim / 2);
      } else if (scale === 0.5) {
        seq.push(new MaxPool(2));
      }
      check(
        outDim > 0,
        () => `simpleFeaturePyramid: inChans ${dim} is too small for scale ${scale} (needs inChans / ${scale === 4 ? 4 : 2} >= 1)`,
      );
      seq.push(new ConvNorm(outDim, opts.outChans, 1, 0, useNorm, eps));
      seq.push(new ConvNorm(opts.outChans, opts.outChans, 3, 1, useNorm, eps));
      this.stages.push(this.addModule(`simfp_${Math.log2(strides[i])}`, seq));
    }
    this.outStrides = opts.topBlock ? [...strides, 2 * strides[strides.length - 1]] : strides;
  }

  /** Check a backbone level (its `featureInfo` entry) against `inChans` and `inStride`. */
  checkLevelInfo(info: LevelInfo[]): void {
    check(
      info.length === 1,
      () =>
        `simpleFeaturePyramid takes one feature map, but ${info.length} levels were selected (strides [${info.map((l) => l.reduction).join(', ')}])`,
    );
    checkLevelInfo(info, [this.inChans], 'simpleFeaturePyramid', { pyramid: false, inStrides: [this.inStride] });
  }

  /** Output levels as `featureInfo`-like entries (channels, stride). */
  outLevelInfo(): LevelInfo[] {
    return this.outStrides.map((reduction) => ({ numChs: this.outChans, reduction }));
  }

  /** `x`: one NHWC map at stride `inStride` -> NHWC maps at `outStrides`, `outChans` each. */
  forward(x: tf.Tensor): tf.Tensor4D[] {
    check(
      isTensor(x) && x.rank === 4,
      () =>
        `simpleFeaturePyramid expects one NHWC map [B, H, W, ${this.inChans}], got ${isTensor(x) ? `shape [${x.shape.join(', ')}]` : String(x)}`,
    );
    check(
      x.shape[3] === this.inChans,
      () =>
        `simpleFeaturePyramid was built with inChans ${this.inChans} but got a map with ${x.shape[3]} channels (shape [${x.shape.join(', ')}])`,
    );
    return tf.tidy(() => {
      const outs = this.stages.map((s) => s.forward(x) as tf.Tensor4D);
      if (this.opts.topBlock) outs.push(maxPool2d(outs[outs.length - 1], 1, 2));
      return outs;
    });
  }
}

/** Placeholder at the norm's index when `norm` is '' (detectron2's `get_norm('')` is None, kept as a pass-through). */
class IdentityNorm extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x.clone();
  }
}

/** Build a {@link SimpleFeaturePyramid}. */
export function simpleFeaturePyramid(opts: SimpleFeaturePyramidOptions): SimpleFeaturePyramid {
  return new SimpleFeaturePyramid(opts);
}
