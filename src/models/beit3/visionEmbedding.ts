import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { Conv2d } from '../../layers/conv2d.js';
import { truncNormal } from '../../layers/init.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';

/**
 * torchscale's `VisionEmbedding` with a mask token and a prepended class token: a `p x p` stride-`p`
 * convolution (with bias) to patch tokens in row-major order; masked patches (1 = masked) are replaced by
 * `mask_token` before `cls_token` is prepended. State-dict keys `proj.*`, `cls_token`, `mask_token` `(1, 1, D)`.
 */
export class VisionEmbedding extends Module {
  readonly proj: Conv2d;
  readonly clsToken: Parameter;
  readonly maskToken: Parameter;
  readonly numPatches: number;
  constructor(
    readonly imgSize: number,
    readonly patchSize: number,
    readonly inChans: number,
    readonly embedDim: number,
  ) {
    super();
    this.config = { imgSize, patchSize, inChans, embedDim };
    this.numPatches = (imgSize / patchSize) ** 2;
    this.proj = this.addModule('proj', new Conv2d(inChans, embedDim, patchSize, { stride: patchSize }));
    this.clsToken = this.addParameter('cls_token', truncNormal([1, 1, embedDim], 0.02));
    this.maskToken = this.addParameter('mask_token', truncNormal([1, 1, embedDim], 0.02));
  }

  /** Rows of the vision position table: class token + patches. */
  numPositionEmbeddings(): number {
    return this.numPatches + 1;
  }

  /** `x` NHWC `[B, imgSize, imgSize, inChans]`, `maskedPosition` `[B, numPatches]` (1 = masked) -> `[B, 1 + N, D]`. */
  forward(x: tf.Tensor, opts: ForwardOptions & { maskedPosition?: tf.Tensor | null } = {}): tf.Tensor3D {
    const maskedPosition = opts.maskedPosition ?? null;
    check(x.rank === 4, () => `beit3: image must be NHWC [B, H, W, C], got shape [${x.shape.join(', ')}]`);
    const [b, h, w, c] = x.shape;
    check(h === this.imgSize && w === this.imgSize, () => `beit3: image size ${h}x${w} does not match the model's imgSize ${this.imgSize}`);
    check(c === this.inChans, () => `beit3: expected ${this.inChans} image channels (NHWC last axis), got ${c}`);
    const n = this.numPatches;
    if (maskedPosition) {
      check(
        maskedPosition.rank === 2 && maskedPosition.shape[0] === b && maskedPosition.shape[1] === n,
        () => `beit3: visionMaskedPosition must be [B, numPatches] = [${b}, ${n}], got [${maskedPosition.shape.join(', ')}]`,
      );
    }
    return tf.tidy(() => {
      let t: tf.Tensor = this.proj.forward(x).reshape([b, n, this.embedDim]);
      if (maskedPosition) {
        const m = maskedPosition.toFloat().expandDims(2);
        t = tf.add(tf.mul(t, tf.sub(1, m)), tf.mul(this.maskToken.value, m));
      }
      return tf.concat([tf.tile(this.clsToken.value, [b, 1, 1]), t], 1) as tf.Tensor3D;
    });
  }
}
