import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { DataRng } from './rng.js';

/** Options of {@link Mixup} (timm's `Mixup` defaults). */
export interface MixupOptions {
  /** Beta(alpha, alpha) of mixup (default 1; 0 off). */
  mixupAlpha?: number;
  /** Beta(alpha, alpha) of CutMix (default 0; 0 off). */
  cutmixAlpha?: number;
  /** Probability of mixing a batch (default 1). */
  prob?: number;
  /** Probability of CutMix instead of mixup when both are on (default 0.5). */
  switchProb?: number;
  /** Recompute lambda from the clipped CutMix box (default true). */
  correctLam?: boolean;
  /** Label smoothing of the targets (default 0.1). */
  labelSmoothing?: number;
  numClasses: number;
  seed?: number;
}

/**
 * timm's `Mixup` in `'batch'` mode (Zhang et al. 2018 mixup; Yun et al. 2019 CutMix): one lambda per
 * batch, each image mixed with the batch flipped (`x.flip(0)`), targets smoothed one-hot mixed with
 * the same lambda. Images NHWC.
 */
export class Mixup {
  private readonly rng: DataRng;
  private readonly o: Required<Omit<MixupOptions, 'seed'>>;
  constructor(opts: MixupOptions) {
    this.o = { mixupAlpha: 1, cutmixAlpha: 0, prob: 1, switchProb: 0.5, correctLam: true, labelSmoothing: 0.1, ...opts };
    check(
      Number.isInteger(opts.numClasses) && opts.numClasses > 0,
      () => `Mixup: numClasses must be a positive integer, got ${opts.numClasses}`,
    );
    this.rng = new DataRng(opts.seed);
  }

  /** One-hot targets with label smoothing, mixed: `lam * y + (1 - lam) * y.flip(0)`. */
  mixTarget(labels: tf.Tensor1D, lam: number): tf.Tensor2D {
    const n = this.o.numClasses;
    const off = this.o.labelSmoothing / n;
    const on = 1 - this.o.labelSmoothing + off;
    return tf.tidy(() => {
      const y = tf
        .oneHot(labels.toInt(), n)
        .mul(on - off)
        .add(off) as tf.Tensor2D;
      return y.mul(lam).add(tf.reverse(y, 0).mul(1 - lam)) as tf.Tensor2D;
    });
  }

  /** Mix a batch: `{ x, y, lam }` (new tensors). */
  apply(x: tf.Tensor4D, labels: tf.Tensor1D): { x: tf.Tensor4D; y: tf.Tensor2D; lam: number } {
    check(
      x.rank === 4 && labels.rank === 1 && x.shape[0] === labels.shape[0],
      () => `Mixup: expected images [B, H, W, C] and labels [B], got [${x.shape}] and [${labels.shape}]`,
    );
    check(x.shape[0] % 2 === 0, () => `Mixup: the batch size must be even, got ${x.shape[0]}`);
    const { mixupAlpha, cutmixAlpha, prob, switchProb, correctLam } = this.o;
    let lam = 1;
    let cutmix = false;
    if ((mixupAlpha > 0 || cutmixAlpha > 0) && this.rng.random() < prob) {
      if (mixupAlpha > 0 && cutmixAlpha > 0) {
        cutmix = this.rng.random() < switchProb;
        lam = cutmix ? this.rng.beta(cutmixAlpha, cutmixAlpha) : this.rng.beta(mixupAlpha, mixupAlpha);
      } else if (mixupAlpha > 0) lam = this.rng.beta(mixupAlpha, mixupAlpha);
      else {
        cutmix = true;
        lam = this.rng.beta(cutmixAlpha, cutmixAlpha);
      }
    }
    if (lam === 1) return { x: tf.clone(x), y: this.mixTarget(labels, 1), lam: 1 };
    const [, h, w] = x.shape;
    if (!cutmix) {
      const mixed = tf.tidy(() => x.mul(lam).add(tf.reverse(x, 0).mul(1 - lam))) as tf.Tensor4D;
      return { x: mixed, y: this.mixTarget(labels, lam), lam };
    }
    // timm's rand_bbox: a box of sqrt(1 - lam) of each side centred uniformly, clipped
    const cutRat = Math.sqrt(1 - lam);
    const ch = Math.trunc(h * cutRat);
    const cw = Math.trunc(w * cutRat);
    const cy = this.rng.randint(0, h - 1);
    const cx = this.rng.randint(0, w - 1);
    const y0 = Math.max(0, Math.min(h, cy - Math.floor(ch / 2)));
    const y1 = Math.max(0, Math.min(h, cy + Math.floor(ch / 2)));
    const x0 = Math.max(0, Math.min(w, cx - Math.floor(cw / 2)));
    const x1 = Math.max(0, Math.min(w, cx + Math.floor(cw / 2)));
    if (correctLam) lam = 1 - ((y1 - y0) * (x1 - x0)) / (h * w);
    const mixed = tf.tidy(() => {
      const mask = tf.buffer([1, h, w, 1], 'float32');
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) mask.set(1, 0, yy, xx, 0);
      const m = mask.toTensor();
      return x.mul(tf.sub(1, m)).add(tf.reverse(x, 0).mul(m));
    }) as tf.Tensor4D;
    return { x: mixed, y: this.mixTarget(labels, lam), lam };
  }
}
