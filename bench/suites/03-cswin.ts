import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/cswin/index.js';
import { BenchSuite } from '../harness.js';

/** cswin_tiny_224 forward at 224 px (issue 3). */
const suite: BenchSuite = {
  name: 'cswin_tiny_224',
  async run(ctx) {
    const model = createModel('cswin_tiny_224');
    const probe = tf.zeros([1, 224, 224, 3]);
    const flops = await ctx.countFlops(() => model.forwardLogits(probe));
    probe.dispose();
    for (const b of ctx.batches) {
      const x = tf.randomNormal([b, 224, 224, 3]);
      const s = ctx.time(() => {
        const y = model.forwardLogits(x);
        y.dataSync();
        y.dispose();
      }, b > 4 ? 2 : 3, 1);
      ctx.report({ name: 'cswin_tiny_224 fwd', batch: b, imgsPerSec: b / s, gflopPerImg: flops / 1e9 });
      x.dispose();
    }
    model.dispose();
  },
};
export default suite;
