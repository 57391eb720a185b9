import * as tf from '@tensorflow/tfjs';
import { BenchSuite } from '../harness.js';

/**
 * The ops our wasm kernels replace, at SwinV2-T / ConvNeXt stage-1 sizes, timed alone: compare the
 * `tfjs-wasm kernels` and `our kernels` passes of one run (`--kernels stock,fast`).
 */
const suite: BenchSuite = {
  name: 'kernels',
  async run(ctx) {
    const row = (name: string, sec: number, flops = 0) =>
      ctx.report({ name, batch: 1, note: `${(sec * 1e3).toFixed(2)} ms${flops ? `, ${(flops / sec / 1e9).toFixed(2)} GFLOP/s` : ''}` });
    const time = (f: () => tf.Tensor | tf.Tensor[]) =>
      ctx.time(
        () => {
          const r = f();
          tf.dispose(r);
        },
        7,
        2,
      );

    // window attention of SwinV2-T stage 1 at 256 px: 64 windows x 3 heads, 64 tokens, head dim 32
    const q = tf.randomNormal([192, 64, 32]);
    const k = tf.randomNormal([192, 64, 32]);
    const a = tf.randomNormal([192, 64, 64]);
    row(
      'attention q k^T [192,64,32]',
      time(() => tf.matMul(q, k, false, true)),
      2 * 192 * 64 * 64 * 32,
    );
    row(
      'attention attn v [192,64,64]x[192,64,32]',
      time(() => tf.matMul(a, q)),
      2 * 192 * 64 * 64 * 32,
    );
    // the gradient products of a Linear 384 -> 96 over 4096 tokens
    const xt = tf.randomNormal([4096, 384]);
    const dy = tf.randomNormal([4096, 96]);
    const w = tf.randomNormal([384, 96]);
    row(
      'linear dW = x^T dy [4096,384]^T [4096,96]',
      time(() => tf.matMul(xt, dy, true, false)),
      2 * 4096 * 384 * 96,
    );
    row(
      'linear dX = dy W^T [4096,96] [384,96]^T',
      time(() => tf.matMul(dy, w, false, true)),
      2 * 4096 * 384 * 96,
    );
    // a training step's weight and bias gradients at batch 8 (SwinV2-T stage 1: 32768 tokens)
    const xb = tf.randomNormal([32768, 384]);
    const dyb = tf.randomNormal([32768, 96]);
    row(
      'linear dW at batch 8 = x^T dy [32768,384]^T [32768,96]',
      time(() => tf.matMul(xb, dyb, true, false)),
      2 * 32768 * 384 * 96,
    );
    row(
      'bias gradient sum over rows [32768,384]',
      time(() => tf.sum(xb, 0)),
    );
    tf.dispose([xb, dyb]);
    // elementwise / row ops on the MLP hidden activation [4096, 384]
    row(
      'erf [4096,384]',
      time(() => tf.erf(xt)),
    );
    row(
      'softmax [192,64,64]',
      time(() => tf.softmax(a)),
    );
    tf.dispose([q, k, a, xt, dy, w]);

    // dense 3x3 conv filter gradient (ViTDet neck / overlapping patch embeds), 56x56, 64 -> 64
    const x = tf.randomNormal([1, 56, 56, 64]);
    const g = tf.randomNormal([1, 56, 56, 64]);
    const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 64, 64] } as unknown as tf.NamedAttrMap;
    if (tf.getKernel('Conv2DBackpropFilter', tf.getBackend())) {
      row(
        'conv 3x3 56x56x64->64 dW',
        time(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: g }, attrs) as tf.Tensor),
        2 * 56 * 56 * 64 * 64 * 9,
      );
    }
    tf.dispose([x, g]);
  },
};
export default suite;
