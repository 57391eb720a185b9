import { existsSync } from 'node:fs';
import { VisBackbonesError } from '../errors.js';
import { resolveDataConfig } from '../data/dataConfig.js';
import { getPretrainedCfg, hasPretrainedCfg } from '../data/pretrainedCfgs.js';
import { readImage } from '../data/readImage.js';
import { isCheckpointDir, loadCheckpointDir } from '../hub/checkpointDir.js';
import { createPretrainedModel } from '../hub/createPretrained.js';
import type { Backbone } from '../models/backbone.js';
import { classify, Classifier } from '../tasks/classify.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';
import { CliIO, selectBackend } from './common.js';

/** Flags of `predict`. */
export const PREDICT_FLAGS = {
  values: ['topk', 'backend', 'cache-dir', 'revision', 'img-size'],
  switches: ['offline', 'json', 'no-progress'],
};

/**
 * `visbackbones predict <model[.tag] | checkpoint dir> <image...> [--topk 5] [--backend wasm|cpu]
 * [--cache-dir DIR] [--revision REV] [--offline] [--img-size N] [--json]`: one line per image: the path,
 * then the top classes with probabilities (ImageNet names for an ImageNet tag, the class-folder names
 * of a fine-tuned checkpoint folder). Weights come through the Hugging Face cache.
 */
export async function predictCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  const [source, ...images] = args.positional;
  if (!source)
    throw new UsageError('predict needs a model name (e.g. swinv2_tiny_window8_256.ms_in1k) or a checkpoint folder, then images');
  if (!images.length) throw new UsageError('predict needs at least one image path after the model');
  const topk = flagInt(args, 'topk', 5)!;
  for (const p of images) if (!existsSync(p)) throw new VisBackbonesError(`image not found: ${p}`);
  await selectBackend(args);
  let model: Backbone;
  if (isCheckpointDir(source)) model = loadCheckpointDir(source).model;
  else {
    if (!hasPretrainedCfg(source)) {
      if (existsSync(source)) throw new UsageError(`'${source}' is a path but not a checkpoint folder (config.json + model.safetensors)`);
      getPretrainedCfg(source); // throws the error naming similar models / the model's tags
    }
    const imgSize = flagInt(args, 'img-size');
    model = await createPretrainedModel(source, {
      cacheDir: flagString(args, 'cache-dir'),
      revision: flagString(args, 'revision'),
      offline: args.flags.has('offline') ? true : undefined,
      progress: !args.flags.has('no-progress'),
      ...(imgSize ? { imgSize } : {}),
    });
  }
  try {
    const imgSize = flagInt(args, 'img-size');
    const dataConfig = resolveDataConfig(model as unknown as Record<string, unknown>, imgSize ? { imgSize } : {});
    for (const path of images) {
      const img = await readImage(path);
      let top;
      try {
        [top] = await classify(model as unknown as Classifier, [img], { topk, dataConfig });
      } finally {
        img.dispose();
      }
      if (args.flags.has('json')) io.out(JSON.stringify({ image: path, top }));
      else io.out([path, ...top.map((t) => `${t.label} ${t.probability.toFixed(4)}`)].join(' | '));
    }
  } finally {
    model.dispose();
  }
  return 0;
}
