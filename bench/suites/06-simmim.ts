import * as tf from '@tensorflow/tfjs';
import { createModel } from '../../src/models/registry.js';
import '../../src/models/swin/index.js';
import { SwinTransformer } from '../../src/models/swin/swinTransformer.js';
import { simmim } from '../../src/pretrain/simmim.js';
import { Trainer } from '../../src/train/trainer.js';
import { BenchSuite } from '../harness.js';

/**
 * One SimMIM training step (forward, backward, AdamW update) of swinv2_tiny at 192 px, batch 8,
 * SimMIM's Swin pretraining setting (192 px, window 6, mask patch 32, ratio 0.6), in one pass (the
 * freeing backward pass holds it in 1.25 GB; it used to need 4 micro-batches of 2). `--simmim-ckpt`
 * turns gradient checkpointing on, `--simmim-batch N` sets the batch (default 8; 32 fits with
 * checkpointing). Reports steps/s and images/s; GFLOP/img is the forward pass only. `--simmim-reps N`
 * (default 1).
 */
const suite: BenchSuite = {
  name: 'simmim_swinv2_tiny_192_train',
  async run(ctx) {
    const bi = ctx.args.indexOf('--simmim-batch');
    const batch = bi >= 0 ? Number(ctx.args[bi + 1]) || 8 : 8;
    const ckpt = ctx.args.includes('--simmim-ckpt');
    const backbone = createModel('swinv2_tiny_window8_256', { imgSize: 192, windowSize: 6, numClasses: 0 }) as SwinTransformer;
    const model = simmim(backbone, { maskPatchSize: 32, maskRatio: 0.6 });
    const probe = tf.zeros([1, 192, 192, 3]);
    const probeMask = model.generateMask(1, 192, 0);
    const flops = await ctx.countFlops(() => model.forward(probe, { mask: probeMask }));
    tf.dispose([probe, probeMask]);
    const x = tf.randomNormal([batch, 192, 192, 3], 0, 1, 'float32', 1);
    const trainer = new Trainer<tf.Tensor>({
      model,
      lr: 1e-4,
      warmupSteps: 0,
      totalSteps: 100,
      clipGradNorm: 5,
      gradCheckpointing: ckpt,
      seed: 0,
      loss: (b, c) => model.loss(b, { mask: model.generateMask(b.shape[0], 192, c.rng), training: true }),
    });
    const step = () => {
      trainer.trainStep(x, { step: trainer.step, epoch: 0, totalSteps: 100, batchSize: batch });
    };
    const i = ctx.args.indexOf('--simmim-reps');
    const reps = i >= 0 ? Number(ctx.args[i + 1]) || 1 : 1;
    const s = ctx.time(step, reps, 1);
    ctx.report({
      name: 'simmim swinv2_tiny 192 train step',
      batch,
      stepsPerSec: 1 / s,
      gflopPerImg: flops / 1e9,
      note: `${(batch / s).toFixed(2)} img/s, ${s.toFixed(1)} s/step (fwd+bwd+AdamW, one pass${ckpt ? ', gradient checkpointing' : ''}; ${ctx.config}); GFLOP/img is the forward`,
    });
    tf.dispose(x);
    trainer.dispose();
    model.dispose();
  },
};
export default suite;
