import * as tf from '@tensorflow/tfjs';
import { createModel, listModels } from '../../src/models/registry.js';
import '../../src/models/convnextV2/index.js';
import '../../src/models/swin/index.js';
import '../../src/models/vit/index.js';
import { BenchSuite, cpuSeconds, median } from '../harness.js';

/**
 * Each model's batch-1 forward as a share of the same process's 1024^3 matmul rate, measured
 * interleaved: after two warm-up passes of each, `--share-rounds` rounds (default 9) of one matmul
 * (`c = matMul(a, b); c.dataSync(); c.dispose()`) then one forward, each timed by the wall clock and in
 * CPU-seconds of this process, medians compared. The forward-throughput suites divide by a matmul rate
 * measured seconds apart; this one pairs every forward with a matmul run next to it. The CPU-seconds
 * count V8's helper threads too (the forward's garbage collection), the wall time the other processes of
 * the shared machine: the row's % of matmul is by wall time, the note gives the CPU-second share.
 */
const MODELS: Array<[string, number]> = [
  ['swinv2_tiny_window8_256', 256],
  ['convnextv2_atto', 224],
  ['vit_small_patch16_224', 224],
];

const suite: BenchSuite = {
  name: 'share of the matmul',
  async run(ctx) {
    const i = ctx.args.indexOf('--share-rounds');
    const rounds = i >= 0 ? Number(ctx.args[i + 1]) : 9;
    const cpu = cpuSeconds;
    const n = 1024;
    const a = tf.randomNormal([n, n]);
    const b = tf.randomNormal([n, n]);
    const matmul = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    for (const [name, size] of MODELS) {
      if (!listModels(name).includes(name)) continue;
      const model = createModel(name);
      const probe = tf.zeros([1, size, size, 3]);
      const flops = await ctx.countFlops(() => model.forwardLogits(probe));
      probe.dispose();
      const x = tf.randomNormal([1, size, size, 3]);
      const forward = () => {
        const y = model.forwardLogits(x);
        y.dataSync();
        y.dispose();
      };
      for (let w = 0; w < 2; w++) {
        matmul();
        forward();
      }
      const t: Record<'mmCpu' | 'mmWall' | 'fwdCpu' | 'fwdWall', number[]> = { mmCpu: [], mmWall: [], fwdCpu: [], fwdWall: [] };
      const timed = (fn: () => void, c: number[], w: number[]) => {
        const c0 = cpu();
        const w0 = performance.now();
        fn();
        w.push((performance.now() - w0) / 1000);
        c.push(cpu() - c0);
      };
      for (let r = 0; r < rounds; r++) {
        timed(matmul, t.mmCpu, t.mmWall);
        timed(forward, t.fwdCpu, t.fwdWall);
      }
      const gf = (work: number, s: number[]) => work / median(s) / 1e9;
      const [mmWall, mmCpu] = [gf(2 * n ** 3, t.mmWall), gf(2 * n ** 3, t.mmCpu)];
      const [fwdWall, fwdCpu] = [gf(flops, t.fwdWall), gf(flops, t.fwdCpu)];
      ctx.report({
        name: `${name} fwd (interleaved)`,
        batch: 1,
        imgsPerSec: 1 / median(t.fwdWall),
        gflopPerImg: flops / 1e9,
        matmulGflops: mmWall,
        note:
          `${((100 * fwdWall) / mmWall).toFixed(1)}% of the interleaved matmul's ${mmWall.toFixed(2)} GFLOP/s by wall; ` +
          `per CPU-s ${fwdCpu.toFixed(2)} = ${((100 * fwdCpu) / mmCpu).toFixed(1)}% of ${mmCpu.toFixed(2)} (medians of ${rounds})`,
      });
      x.dispose();
      model.dispose();
    }
    tf.dispose([a, b]);
  },
};
export default suite;
