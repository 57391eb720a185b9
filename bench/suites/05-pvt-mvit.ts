import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/pvtV2/index.js';
import '../../src/models/mvitV2/index.js';
import { BenchSuite } from '../harness.js';

/** pvt_v2_b0 and mvitv2_tiny forward at 224 px (issue 4), at each of `ctx.batches`. */
const suite: BenchSuite = {
  name: 'pvt_v2_b0 / mvitv2_tiny',
  async run(ctx) {
    for (const name of ['pvt_v2_b0', 'mvitv2_tiny']) {
      const model = createModel(name);
      const probe = tf.zeros([1, 224, 224, 3]);
      const flops = await ctx.countFlops(() => model.forwardLogits(probe));
      probe.dispose();
      for (const b of ctx.batches) {
        const x = tf.randomNormal([b, 224, 224, 3]);
        const s = ctx.time(
          () => {
            const y = model.forwardLogits(x);
            y.dataSync();
            y.dispose();
          },
          b > 4 ? 2 : 3,
          1,
        );
        ctx.report({ name: `${name} fwd`, batch: b, imgsPerSec: b / s, gflopPerImg: flops / 1e9 });
        x.dispose();
      }
      model.dispose();
    }
  },
};
export default suite;
