import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../../errors.js';
import { denseProduct } from '../../layers/linear.js';
import { uniform } from '../../layers/init.js';
import { Module, ParamLayout, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { padEnd3d, Triple, windowPartition3d } from './windows3d.js';

/**
 * A kernel == stride `nn.Conv3d.weight` kept as a dense kernel: internal `[kt*kh*kw*in, out]` in
 * (t, h, w, channel) order, reference `[out, in, kt, kh, kw]`. Conversions use rank-3 transposes.
 */
export function patch3dLayout(k: Triple): ParamLayout {
  const kk = k[0] * k[1] * k[2];
  return {
    name: `patch${k.join('x')}`,
    torchShape: ([rows, o]) => [o, rows / kk, ...k],
    toTorch: (t) => {
      const [rows, o] = t.shape;
      return tf.tidy(() =>
        t
          .reshape([kk, rows / kk, o])
          .transpose([2, 1, 0])
          .reshape([o, rows / kk, ...k]),
      );
    },
    fromTorch: (t) => {
      const [o, i] = t.shape;
      return tf.tidy(() =>
        t
          .reshape([o, i, kk])
          .transpose([2, 1, 0])
          .reshape([kk * i, o]),
      );
    },
  };
}

/** Options of {@link PatchEmbed3D}. */
export interface PatchEmbed3DOptions {
  patchSize: Triple;
  inChans: number;
  embedDim: number;
  /** LayerNorm after the projection (`patch_norm`). */
  norm: boolean;
  normEps?: number;
}

/**
 * Video to patch embedding (Video Swin's `PatchEmbed3D`): T, H, W zero-padded at the end to multiples
 * of the patch, a `pt x ph x pw` kernel == stride Conv3d computed as patchify + one 2-D matmul, then
 * the optional LayerNorm. NTHWC in and out. Keys `proj.weight` `[C, in, pt, ph, pw]`, `proj.bias`, `norm.*`.
 */
export class PatchEmbed3D extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly norm: LayerNorm | null;
  constructor(readonly opts: PatchEmbed3DOptions) {
    super();
    this.config = { ...opts };
    const k = opts.patchSize;
    const fanIn = opts.inChans * k[0] * k[1] * k[2];
    const proj = new PatchProjection(fanIn, opts.embedDim, k);
    this.addModule('proj', proj);
    this.weight = proj.weight;
    this.bias = proj.bias;
    this.norm = opts.norm ? this.addModule('norm', new LayerNorm(opts.embedDim, opts.normEps ?? 1e-5)) : null;
  }

  /** `[B, T, H, W, C]` -> `[B, ceil(T/pt), ceil(H/ph), ceil(W/pw), embedDim]`. */
  forward(x: tf.Tensor): tf.Tensor5D {
    check(x.rank === 5, () => `PatchEmbed3D expects an NTHWC clip [B, T, H, W, C], got shape [${x.shape.join(', ')}]`);
    const [b, t, h, w, c] = x.shape;
    check(
      c === this.opts.inChans,
      () => `expected ${this.opts.inChans} input channels (NTHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`,
    );
    const k = this.opts.patchSize;
    const pad: Triple = [(k[0] - (t % k[0])) % k[0], (k[1] - (h % k[1])) % k[1], (k[2] - (w % k[2])) % k[2]];
    const grid: Triple = [(t + pad[0]) / k[0], (h + pad[1]) / k[1], (w + pad[2]) / k[2]];
    return tf.tidy(() => {
      const patches = windowPartition3d(padEnd3d(x, pad), k);
      const rows = patches.reshape([patches.shape[0], k[0] * k[1] * k[2] * c]) as tf.Tensor2D;
      let y: tf.Tensor = denseProduct(rows, this.weight.value as tf.Tensor2D, this.bias.value);
      if (this.norm) y = this.norm.forward(y);
      return y.reshape([b, ...grid, this.opts.embedDim]) as tf.Tensor5D;
    });
  }
}

/** The Conv3d's parameters (`proj.weight`, `proj.bias`) under their reference names. */
class PatchProjection extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(fanIn: number, out: number, k: Triple) {
    super();
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.addParameter('weight', uniform([fanIn, out], bound), patch3dLayout(k));
    this.bias = this.addParameter('bias', uniform([out], bound));
  }
  forward(): never {
    throw new VisBackbonesError('PatchProjection holds parameters only; PatchEmbed3D applies it');
  }
}
