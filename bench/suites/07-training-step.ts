import * as tf from '@tensorflow/tfjs';
import { createModel, listModels } from '../../src/models/registry.js';
import '../../src/models/convnextV2/index.js';
import '../../src/models/swin/index.js';
import { BenchSuite } from '../harness.js';

/**
 * One SGD training step (forward in training mode, softmax cross-entropy, gradients of every
 * trainable variable, update) at batch 8, for swinv2_tiny_window8_256 (256 px) and convnextv2_atto
 * (224 px). GFLOP/img counts 3x the forward FLOPs (forward + the two backward products), the usual
 * estimate of a training step's cost.
 *
 * The step runs in one pass: with the package's freeing backward pass a swinv2_tiny step at batch 8
 * holds 2.4 GB of the 4 GB wasm heap (tfjs's own tape needed micro-batches of 1). `--training-micro N`
 * splits the batch into micro-batches of N (gradients accumulated, loss scaled by N/8: the same update).
 */
const MODELS: Array<{ name: string; size: number }> = [
  { name: 'swinv2_tiny_window8_256', size: 256 },
  { name: 'convnextv2_atto', size: 224 },
];

const suite: BenchSuite = {
  name: 'training step',
  async run(ctx) {
    const batch = 8;
    const mi = ctx.args.indexOf('--training-micro');
    const micro = mi >= 0 ? Number(ctx.args[mi + 1]) || batch : batch;
    for (const { name, size } of MODELS) {
      if (!listModels(name).includes(name)) continue;
      const model = createModel(name);
      const probe = tf.zeros([1, size, size, 3]);
      const fwdFlops = await ctx.countFlops(() => model.forwardLogits(probe));
      const numClasses = tf.tidy(() => model.forwardLogits(probe).shape[1] as number);
      probe.dispose();
      const xs: tf.Tensor[] = [];
      const ys: tf.Tensor[] = [];
      for (let i = 0; i < batch; i += micro) {
        xs.push(tf.randomNormal([micro, size, size, 3]));
        ys.push(
          tf.oneHot(
            tf.tensor1d(
              Array.from({ length: micro }, (_, j) => ((i + j) * 37) % numClasses),
              'int32',
            ),
            numClasses,
          ),
        );
      }
      const vars = model.trainableVariables();
      const opt = tf.train.sgd(1e-4);
      const step = () => {
        let sum: tf.NamedTensorMap | null = null;
        let loss = 0;
        xs.forEach((x, i) => {
          const { value, grads } = tf.variableGrads(
            () => tf.mul(tf.losses.softmaxCrossEntropy(ys[i], model.forwardLogits(x, { training: true })), micro / batch) as tf.Scalar,
            vars,
          );
          loss += value.dataSync()[0];
          value.dispose();
          if (!sum) sum = grads;
          else {
            const prev: tf.NamedTensorMap = sum;
            sum = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(prev[k], g)]));
            tf.dispose([...Object.values(prev), ...Object.values(grads)]);
          }
        });
        opt.applyGradients(sum!);
        tf.dispose(Object.values(sum!));
        if (!Number.isFinite(loss)) throw new Error(`${name}: loss ${loss}`);
      };
      step(); // warm-up
      // CPU-seconds of the timed step beside its wall time: on the shared machines the wall time also counts
      // the other processes (the PyTorch figures in bench/results are CPU-seconds too)
      const c0 = process.cpuUsage();
      const s = ctx.time(step, 1, 0);
      const cu = process.cpuUsage(c0);
      ctx.report({
        name: `${name} train step`,
        batch,
        imgsPerSec: batch / s,
        gflopPerImg: (3 * fwdFlops) / 1e9,
        note: `${s.toFixed(2)} s/step, ${((cu.user + cu.system) / 1e6).toFixed(2)} CPU-s (${micro === batch ? 'one pass' : `micro-batches of ${micro}`})`,
      });
      tf.dispose([...xs, ...ys]);
      opt.dispose();
      model.dispose();
    }
  },
};
export default suite;
