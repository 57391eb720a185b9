import * as tf from '@tensorflow/tfjs';
import { getPretrainedCfg, hasPretrainedCfg, splitModelNameTag, TimmPretrainedCfg } from '../data/pretrainedCfgs.js';
import { pretrainedSource, PretrainedSource } from '../hub/pretrainedSource.js';
import { getModelEntry, ModelEntry } from '../models/registry.js';
import { countFlops } from '../utils/flops.js';
import { ParsedArgs, UsageError } from './args.js';
import { CliIO, humanCount, imageSizeOf, modelOverrides, selectBackend } from './common.js';

/**
 * The preprocessing and weights of `name` (`'<arch>'` or `'<arch>.<tag>'`): timm's pretrained cfg of
 * the tag (the default tag for a bare name) where there is one, else the variant's registered cfg.
 */
function pretrainedOf(name: string, entry: ModelEntry): { cfg: Partial<TimmPretrainedCfg>; source: PretrainedSource | null } {
  if (hasPretrainedCfg(name) || name.includes('.')) {
    const cfg = getPretrainedCfg(name);
    return { cfg, source: pretrainedSource(cfg) };
  }
  const cfg = entry.pretrainedCfg as unknown as Partial<TimmPretrainedCfg>;
  return { cfg, source: cfg.hfHubId ? pretrainedSource(cfg) : null };
}

/**
 * `visbackbones info NAME[.TAG] [--img-size N] [--config JSON|FILE] [--backend wasm|cpu] [--no-flops]`:
 * parameters, GFLOPs at the default (or given) size, the feature levels (channels, strides), the
 * pretrained preprocessing (input size, crop pct, interpolation, mean/std) and the weights URL.
 * FLOPs are counted by profiling one forward pass (2 x multiply-adds of matmuls and convolutions).
 */
export async function infoCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  if (args.positional.length !== 1) throw new UsageError(`info needs exactly one model name, got ${args.positional.length}`);
  const name = args.positional[0];
  const entry = getModelEntry(splitModelNameTag(name)[0]);
  const { cfg: pc, source } = pretrainedOf(name, entry);
  const overrides = modelOverrides(args);
  await selectBackend(args);
  const model = entry.create(overrides);
  try {
    const cfg = { ...entry.config, ...overrides };
    const [h, w] = imageSizeOf(cfg);
    io.out(`${name}  (family ${entry.family})`);
    io.out(`  config:      ${JSON.stringify(cfg)}`);
    const [, ph, pw] = pc.inputSize ?? entry.pretrainedCfg.inputSize;
    io.out(`  input:       ${h}x${w}x${model.inChans} (NHWC)`);
    const crop = `crop pct ${pc.cropPct}${pc.cropMode ? ` (${pc.cropMode})` : ''}`;
    io.out(`  preprocess:  input size ${ph}x${pw}, ${crop}, interpolation ${pc.interpolation}${pc.name ? ` (${pc.name})` : ''}`);
    io.out(`               mean ${(pc.mean ?? []).join(', ')}, std ${(pc.std ?? []).join(', ')}`);
    io.out(`  classes:     ${model.numClasses}`);
    io.out(
      `  weights:     ${source ? `${source.url}${source.format === 'pytorch' ? ' (PyTorch file: convert it first)' : ''}` : 'none published'}`,
    );
    io.out(`  parameters:  ${humanCount(model.numParams())} (${model.numParams()})`);
    if (!args.flags.has('no-flops')) {
      const x = tf.zeros([1, h, w, model.inChans]);
      const flops = await countFlops(() => model.forwardLogits(x));
      x.dispose();
      io.out(`  GFLOPs:      ${(flops / 1e9).toFixed(3)} at ${h}x${w} (GMACs ${(flops / 2e9).toFixed(3)}; matmuls and convolutions)`);
    }
    io.out('  features:    level  channels  stride  module');
    model.featureInfo.forEach((f, i) =>
      io.out(`               ${String(i).padStart(5)}  ${String(f.numChs).padStart(8)}  ${String(f.reduction).padStart(6)}  ${f.module}`),
    );
  } finally {
    model.dispose();
  }
  return 0;
}
