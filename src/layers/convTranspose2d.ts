import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { uniform } from './init.js';
import { Module, ParamLayout, Parameter } from './module.js';

/**
 * Layout of a kernel == stride `nn.ConvTranspose2d.weight`: internal `[in, k*k*out]` with the
 * columns in (row p, column q, channel o) order, reference `[in, out, k, k]`.
 */
export function transposedPatchLayout(k: number): ParamLayout {
  return {
    name: `transposedPatch${k}x${k}`,
    torchShape: ([i, n]) => [i, n / (k * k), k, k],
    toTorch: (t) => {
      const [i, n] = t.shape;
      return tf.tidy(() => t.reshape([i, k, k, n / (k * k)]).transpose([0, 3, 1, 2]));
    },
    fromTorch: (t) => {
      const [i, o] = t.shape;
      return tf.tidy(() => t.transpose([0, 2, 3, 1]).reshape([i, k * k * o]));
    },
  };
}

/**
 * PyTorch's `nn.ConvTranspose2d(in, out, k, stride=k)` (no padding) on NHWC maps: every input pixel
 * scatters a `k x k x out` patch, so the output is `[B, k H, k W, out]`. Computed as one 2-D matmul
 * followed by a depth-to-space rearrangement (rank <= 4 transposes), which is differentiable on every
 * backend (tfjs-wasm has no `Conv2DBackpropFilter`). State-dict keys `weight` `[in, out, k, k]`, `bias`.
 */
export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(
    readonly inChans: number,
    readonly outChans: number,
    readonly kernelSize: number,
    opts: { stride?: number; bias?: boolean } = {},
  ) {
    super();
    this.config = { inChans, outChans, kernelSize, ...opts };
    const k = kernelSize;
    check(
      (opts.stride ?? k) === k,
      () =>
        `ConvTranspose2d supports stride == kernelSize only (ViTDet's 2x2 stride-2 upsampling); got kernelSize ${k}, stride ${opts.stride}`,
    );
    check(Number.isInteger(k) && k >= 1, () => `ConvTranspose2d kernelSize must be a positive integer, got ${k}`);
    // PyTorch's default init: fan_in is computed from weight.size(1) * k * k = out * k * k.
    const bound = 1 / Math.sqrt(outChans * k * k);
    this.weight = this.addParameter('weight', uniform([inChans, k * k * outChans], bound), transposedPatchLayout(k));
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', uniform([outChans], bound)) : null;
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    check(x.rank === 4, () => `ConvTranspose2d expects an NHWC tensor of rank 4, got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    check(
      c === this.inChans,
      () => `ConvTranspose2d expected ${this.inChans} input channels, got ${c} (NHWC shape [${x.shape.join(', ')}])`,
    );
    const k = this.kernelSize;
    const o = this.outChans;
    return tf.tidy(() => {
      // [B*H*W, C] @ [C, (p, q, o)] -> rows (b, h, w), columns (p, q, o)
      const y = tf.matMul(x.reshape([b * h * w, c]) as tf.Tensor2D, this.weight.value as tf.Tensor2D);
      // (b h) w p (q o) -> (b h) p w (q o) = [B, kH, kW, o]
      let z =
        k === 1
          ? y.reshape([b, h, w, o])
          : y
              .reshape([b * h, w, k, k * o])
              .transpose([0, 2, 1, 3])
              .reshape([b, h * k, w * k, o]);
      if (this.bias) z = tf.add(z, this.bias.value);
      return z as tf.Tensor4D;
    });
  }
}
