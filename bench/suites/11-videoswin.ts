import * as tf from '@tensorflow/tfjs';
import { createVideoModel } from '../../src/models/videoSwin/index.js';
import type { BenchSuite } from '../harness.js';

const NAME = 'video_swin_tiny_patch244_window877';
const FRAMES = 8;
const SIZE = 224;

/**
 * video_swin_tiny_patch244_window877 forward on 8 x 224 x 224 clips (4 x 56 x 56 tokens, windows clamped
 * to 4 x 7 x 7 in time): 3-D window attention, rank <= 4 window partitions. `imgsPerSec` counts clips.
 */
const suite: BenchSuite = {
  name: NAME,
  async run(ctx) {
    const model = createVideoModel(NAME);
    const probe = tf.zeros([1, FRAMES, SIZE, SIZE, 3]);
    tf.dispose(model.forward(probe) as tf.Tensor); // builds the stage masks of this clip size once
    const flops = await ctx.countFlops(() => model.forward(probe) as tf.Tensor);
    probe.dispose();
    for (const b of ctx.batches) {
      const x = tf.randomNormal([b, FRAMES, SIZE, SIZE, 3]);
      const s = ctx.time(
        () => {
          const y = model.forward(x) as tf.Tensor;
          y.dataSync();
          y.dispose();
        },
        b > 2 ? 2 : 3,
        1,
      );
      ctx.report({ name: `${NAME} fwd ${FRAMES}x${SIZE}`, batch: b, imgsPerSec: b / s, gflopPerImg: flops / 1e9, note: 'clips/s' });
      x.dispose();
    }
    model.dispose();
  },
};
export default suite;
