import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { Conv2d } from './conv2d.js';

/**
 * Locally-enhanced positional encoding (CSWin, Dong et al. 2022, sec. 3.3 eq. 5): a depthwise `k x k`
 * convolution (k = 3, zero padding, with bias) applied to V inside each window or stripe, whose result
 * is added to the attention output `softmax(QK^T/sqrt(d))V + DWConv(V)`. Windows are convolved
 * independently, so the zero padding falls on each window's border (the official `get_v` applied to
 * the stripes). Usable with any windowed attention. State-dict keys `weight` `[C, 1, k, k]`, `bias`.
 */
export class LePE extends Conv2d {
  constructor(
    readonly dim: number,
    kernelSize = 3,
  ) {
    super(dim, dim, kernelSize, { padding: (kernelSize - 1) >> 1, groups: dim, bias: true });
    check(kernelSize % 2 === 1, () => `LePE kernelSize must be odd, got ${kernelSize}`);
    this.config = { dim, kernelSize };
  }

  /**
   * LePE of window tokens: `v` `[B * nW, wh * ww, C]` (each window's tokens in row-major order) ->
   * `[B * nW, wh * ww, C]`.
   */
  forwardWindows(v: tf.Tensor, wh: number, ww: number): tf.Tensor3D {
    check(
      v.rank === 3 && v.shape[1] === wh * ww,
      () => `LePE expects window tokens [B * nW, ${wh} * ${ww}, C], got shape [${v.shape.join(', ')}]`,
    );
    const [bw, n, c] = v.shape;
    return tf.tidy(() => this.forward(v.reshape([bw, wh, ww, c])).reshape([bw, n, c]) as tf.Tensor3D);
  }
}
