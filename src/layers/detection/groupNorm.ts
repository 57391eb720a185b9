import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Module, Parameter } from '../module.js';

/**
 * Group normalization (Wu & He 2018, eq. 1-3; PyTorch `nn.GroupNorm`) on NHWC maps: the channels are
 * split into `numGroups` consecutive blocks, each normalised over (H, W, block) with the biased
 * variance, then scaled and shifted per channel. State-dict keys `weight`, `bias` `[C]`.
 */
export class GroupNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.config = { numGroups, numChannels, eps };
    check(
      Number.isInteger(numGroups) && numGroups > 0 && numChannels % numGroups === 0,
      () => `GroupNorm: numChannels ${numChannels} must be a multiple of numGroups ${numGroups}`,
    );
    this.weight = this.addParameter('weight', tf.ones([numChannels]));
    this.bias = this.addParameter('bias', tf.zeros([numChannels]));
  }

  forward(x: tf.Tensor): tf.Tensor4D {
    check(
      x.rank === 4 && x.shape[3] === this.numChannels,
      () => `GroupNorm expects NHWC with ${this.numChannels} channels, got [${x.shape.join(', ')}]`,
    );
    const [b, h, w, c] = x.shape;
    const g = this.numGroups;
    return tf.tidy(() => {
      const xg = tf.reshape(x, [b, h * w, g, c / g]);
      const { mean, variance } = tf.moments(xg, [1, 3], true);
      const y = tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(tf.reshape(y, [b, h, w, c]), this.weight.value), this.bias.value) as tf.Tensor4D;
    });
  }
}
