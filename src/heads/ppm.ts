import * as tf from '@tensorflow/tfjs';
import { adaptiveAvgPool2d } from '../layers/adaptivePool.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { ForwardOptions, Module, ModuleList } from '../layers/module.js';
import { ConvModule, ConvModuleNorm } from './convModule.js';

/** Adaptive average pooling to a fixed grid, as a parameter-free sequence member (`nn.AdaptiveAvgPool2d`). */
class AdaptiveAvgPool extends Module {
  constructor(readonly size: number) {
    super();
    this.config = { size };
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return adaptiveAvgPool2d(x, this.size);
  }
}

/**
 * Pyramid pooling module (Zhao et al. 2017, PSPNet sec. 3.2): for each scale `s`, adaptive average
 * pooling to `s x s` bins, a 1x1 conv-norm-ReLU, and bilinear upsampling (align_corners=False) back to
 * the input size. Returns the list of upsampled branches (mmseg's `PPM`; keys `<i>.1.conv.*`, `<i>.1.bn.*`).
 */
export class PPM extends Module {
  readonly branches: ModuleList[] = [];
  constructor(
    readonly poolScales: number[],
    readonly inChans: number,
    readonly channels: number,
    norm: ConvModuleNorm = 'bn',
  ) {
    super();
    this.config = { poolScales, inChans, channels, norm };
    poolScales.forEach((s, i) =>
      this.branches.push(
        this.addModule(String(i), new ModuleList([new AdaptiveAvgPool(s), new ConvModule(inChans, channels, 1, { norm })])),
      ),
    );
  }
  /** `x` NHWC -> one `[B, H, W, channels]` map per pool scale. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D[] {
    const [, h, w] = x.shape;
    return tf.tidy(() => this.branches.map((branch) => interpolateNhwc(branch.forward(x, opts), [h, w], { mode: 'bilinear' })));
  }
}
