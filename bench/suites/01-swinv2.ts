import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/swin/index.js';
import { BenchSuite } from '../harness.js';

/** swinv2_tiny_window8_256 forward at 256 px (issue: foundation). */
const suite: BenchSuite = {
  name: 'swinv2_tiny_window8_256',
  async run(ctx) {
    const model = createModel('swinv2_tiny_window8_256');
    const probe = tf.zeros([1, 256, 256, 3]);
    const flops = await ctx.countFlops(() => model.forwardLogits(probe));
    probe.dispose();
    for (const b of ctx.batches) {
      const x = tf.randomNormal([b, 256, 256, 3]);
      const s = ctx.time(() => {
        const y = model.forwardLogits(x);
        y.dataSync();
        y.dispose();
      }, b > 4 ? 2 : 3, 1);
      ctx.report({ name: 'swinv2_tiny_window8_256 fwd', batch: b, imgsPerSec: b / s, gflopPerImg: flops / 1e9 });
      x.dispose();
    }
    model.dispose();
  },
};
export default suite;
