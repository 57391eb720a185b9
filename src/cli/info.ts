import * as tf from '@tensorflow/tfjs';
import { getModelEntry } from '../models/registry.js';
import { countFlops } from '../utils/flops.js';
import { ParsedArgs, UsageError } from './args.js';
import { CliIO, humanCount, imageSizeOf, modelOverrides, selectBackend } from './common.js';

/**
 * `visbackbones info NAME [--img-size N] [--config JSON|FILE] [--backend wasm|cpu] [--no-flops]`:
 * parameters, GFLOPs at the default (or given) size, and the feature levels (channels, strides).
 * FLOPs are counted by profiling one forward pass (2 x multiply-adds of matmuls and convolutions).
 */
export async function infoCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length !== 1) throw new UsageError(`info needs exactly one model name, got ${args.positional.length}`);
  const name = args.positional[0];
  const entry = getModelEntry(name);
  const overrides = modelOverrides(args);
  await selectBackend(args);
  const model = entry.create(overrides);
  try {
    const cfg = { ...entry.config, ...overrides };
    const [h, w] = imageSizeOf(cfg);
    io.out(`${name}  (family ${entry.family})`);
    io.out(`  config:      ${JSON.stringify(cfg)}`);
    io.out(`  input:       ${h}x${w}x${model.inChans} (NHWC), mean ${entry.pretrainedCfg.mean.join('/')}, std ${entry.pretrainedCfg.std.join('/')}`);
    io.out(`  classes:     ${model.numClasses}`);
    if (entry.pretrainedCfg.hfHubId) io.out(`  weights:     ${entry.pretrainedCfg.hfHubId} (Hugging Face hub, model.safetensors)`);
    io.out(`  parameters:  ${humanCount(model.numParams())} (${model.numParams()})`);
    if (!args.flags.has('no-flops')) {
      const x = tf.zeros([1, h, w, model.inChans]);
      const flops = await countFlops(() => model.forwardLogits(x));
      x.dispose();
      io.out(`  GFLOPs:      ${(flops / 1e9).toFixed(3)} at ${h}x${w} (GMACs ${(flops / 2e9).toFixed(3)}; matmuls and convolutions)`);
    }
    io.out('  features:    level  channels  stride  module');
    model.featureInfo.forEach((f, i) => io.out(`               ${String(i).padStart(5)}  ${String(f.numChs).padStart(8)}  ${String(f.reduction).padStart(6)}  ${f.module}`));
  } finally {
    model.dispose();
  }
  return 0;
}
