import * as tf from '@tensorflow/tfjs';
import '../../src/models/convnextV2/index.js';
import { BenchSuite, benchForward } from '../harness.js';

/**
 * convnextv2_atto forward at 224 px, plus the depthwise 7x7 conv of its kind (56x56x96, the
 * ConvNeXt-T stage-1 shape) forward and the two backprops that train it on wasm.
 */
const suite: BenchSuite = {
  name: 'convnextv2_atto',
  async run(ctx) {
    await benchForward(ctx, 'convnextv2_atto', 224);

    // depthwise 7x7, 56x56x96, padding 3 (as the blocks run it: explicit pad + 'valid')
    const x = tf.randomNormal([1, 56, 56, 96]) as tf.Tensor4D;
    const w = tf.randomNormal([7, 7, 96, 1]) as tf.Tensor4D;
    const xp = tf.pad(x, [
      [0, 0],
      [3, 3],
      [3, 3],
      [0, 0],
    ]) as tf.Tensor4D;
    const dy = tf.randomNormal([1, 56, 56, 96]) as tf.Tensor4D;
    const gflop = (2 * 56 * 56 * 96 * 49) / 1e9;
    const row = (name: string, sec: number) =>
      ctx.report({ name, batch: 1, note: `${(sec * 1e3).toFixed(2)} ms, ${(gflop / sec).toFixed(2)} GFLOP/s` });
    row(
      'depthwise 7x7 56x56x96 fwd',
      ctx.time(() => tf.depthwiseConv2d(xp, w, 1, 'valid').dispose(), 10, 2),
    );
    const attrs = { strides: [1, 1], dilations: [1, 1], pad: 'valid' } as unknown as tf.NamedAttrMap;
    row(
      'depthwise 7x7 56x56x96 dW',
      ctx.time(
        () =>
          (
            tf
              .engine()
              .runKernel('DepthwiseConv2dNativeBackpropFilter', { x: xp, dy }, { ...attrs, filterShape: [7, 7, 96, 1] }) as tf.Tensor
          ).dispose(),
        10,
        2,
      ),
    );
    row(
      'depthwise 7x7 56x56x96 dX',
      ctx.time(
        () =>
          (
            tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...attrs, inputShape: xp.shape }) as tf.Tensor
          ).dispose(),
        10,
        2,
      ),
    );
    tf.dispose([x, w, xp, dy]);
  },
};
export default suite;
