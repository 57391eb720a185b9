import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { uniform } from '../../layers/init.js';
import { Module, ParamLayout, Parameter } from '../../layers/module.js';
import type { Triple } from './windows3d.js';

/**
 * Layout of a kernel == stride `nn.ConvTranspose3d.weight`: internal `[in, kt*kh*kw*out]` with the
 * columns in (t, h, w, channel) order, reference `[in, out, kt, kh, kw]` (rank-3 transposes).
 */
export function transposedPatch3dLayout(k: Triple): ParamLayout {
  const kk = k[0] * k[1] * k[2];
  return {
    name: `transposedPatch${k.join('x')}`,
    torchShape: ([i, n]) => [i, n / kk, ...k],
    toTorch: (t) => {
      const [i, n] = t.shape;
      return tf.tidy(() =>
        t
          .reshape([i, kk, n / kk])
          .transpose([0, 2, 1])
          .reshape([i, n / kk, ...k]),
      );
    },
    fromTorch: (t) => {
      const [i, o] = t.shape;
      return tf.tidy(() =>
        t
          .reshape([i, o, kk])
          .transpose([0, 2, 1])
          .reshape([i, kk * o]),
      );
    },
  };
}

/**
 * PyTorch's `nn.ConvTranspose3d(in, out, k, stride=k)` (no padding) on NTHWC maps: every input voxel
 * scatters a `kt x kh x kw x out` block, `[B, D, H, W, in]` -> `[B, kt D, kh H, kw W, out]`. One 2-D
 * matmul and two rank-4 depth-to-space rearrangements (differentiable everywhere). Keys `weight`
 * `[in, out, kt, kh, kw]`, `bias`.
 */
export class ConvTranspose3d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(
    readonly inChans: number,
    readonly outChans: number,
    readonly kernelSize: Triple,
  ) {
    super();
    this.config = { inChans, outChans, kernelSize };
    const kk = kernelSize[0] * kernelSize[1] * kernelSize[2];
    const bound = 1 / Math.sqrt(outChans * kk);
    this.weight = this.addParameter('weight', uniform([inChans, kk * outChans], bound), transposedPatch3dLayout(kernelSize));
    this.bias = this.addParameter('bias', uniform([outChans], bound));
  }

  forward(x: tf.Tensor): tf.Tensor5D {
    check(x.rank === 5, () => `ConvTranspose3d expects an NTHWC tensor of rank 5, got shape [${x.shape.join(', ')}]`);
    const [b, d, h, w, c] = x.shape;
    check(c === this.inChans, () => `ConvTranspose3d expected ${this.inChans} input channels, got ${c}`);
    const [kt, kh, kw] = this.kernelSize;
    const o = this.outChans;
    return tf.tidy(() => {
      // rows (b, d, h, w), columns (pt, ph, pw, o)
      let y: tf.Tensor = tf.matMul(x.reshape([b * d * h * w, c]) as tf.Tensor2D, this.weight.value as tf.Tensor2D);
      // (b d) (h w) pt (ph pw o) -> (b d) pt (h w) (ph pw o)
      if (kt > 1) y = y.reshape([b * d, h * w, kt, kh * kw * o]).transpose([0, 2, 1, 3]);
      // (b d pt h) w ph (pw o) -> (b d pt h) ph w (pw o)
      if (kh > 1 || kw > 1) y = y.reshape([b * d * kt * h, w, kh, kw * o]).transpose([0, 2, 1, 3]);
      return tf.add(y.reshape([b, d * kt, h * kh, w * kw, o]), this.bias.value) as tf.Tensor5D;
    });
  }
}
