import '../index.js'; // registers every model family and the layers adapter
import { VisBackbonesError } from '../errors.js';
import { parseArgs, UsageError } from './args.js';
import { benchCommand } from './bench.js';
import { CliIO, writeStdout } from './common.js';
import { convertCommand } from './convert.js';
import { DETECT_FLAGS, detectCommand } from './detect.js';
import { infoCommand } from './info.js';
import { listCommand } from './list.js';
import { FINETUNE_FLAGS, finetuneCommand } from './finetune.js';
import { PREDICT_FLAGS, predictCommand } from './predict.js';
import { PRETRAIN_FLAGS, pretrainCommand } from './pretrain.js';

/** The CLI's help text. */
export const USAGE = `usage: visbackbones <command> [options]

commands:
  list [FILTER]                      registered model names (FILTER: substring or wildcard, e.g. 'swinv2*')
  info NAME                          parameters, GFLOPs at the default size, feature channels and strides,
                                     preprocessing (input size, crop, interpolation, mean/std), weights URL
       [--img-size N] [--config JSON|FILE] [--backend wasm|cpu] [--no-flops]
  convert --timm FILE.safetensors --model NAME --out DIR
       [--img-size N] [--config JSON|FILE] [--check] [--backend wasm|cpu]
                                     a timm checkpoint to a TF.js model directory (model.json + weights.bin)
  bench NAME [--backend wasm|cpu] [--threads N] [--batch N] [--reps N] [--img-size N] [--config JSON|FILE]
                                     forward-pass throughput
  predict MODEL[.TAG]|CHECKPOINT_DIR IMAGE... [--topk N] [--backend wasm|cpu] [--cache-dir DIR] [--offline] [--json]
                                     top classes of images (pretrained weights through the Hugging Face cache)
  finetune --model NAME[.TAG] --data DIR --out DIR [--epochs N] [--img-size N] [--batch-size N] [--lr X]
       [--val-split 0.1 | --val-data DIR] [--pretrained] [--strict] [--seed N] [--workers N] [--resume]
       [--max-steps N] [--config JSON|FILE] [--backend wasm|cpu]
                                     fine-tune a classifier on DIR/<class>/<image>; writes a checkpoint folder
  pretrain --method simmim|mixmim|fastmim|fcmae --model NAME --data DIR --out DIR [--steps N] [--batch-size N]
       [--lr X] [--img-size N] [--config JSON|FILE] [--val-split 0.1] [--eval-every N] [--workers N]
       [--method-config JSON]        masked-image-modeling pretraining on the images under DIR
                                     (validation loss, loss plot, reconstruction PNGs)
  detect DETECTOR_DIR IMAGE... [--score-thresh 0.5] [--max-dets N] [--backend wasm|cpu] [--json]
                                     boxes, labels, scores (and mask areas) of a detector folder's detections

exit codes: 0 success, 1 error (missing file, corrupt checkpoint, mismatched weights), 2 usage error
(unknown command, option or model)`;

const COMMON = ['img-size', 'config', 'backend'];

/** The process's own stdout / stderr. */
export const PROCESS_IO: CliIO = { out: writeStdout, err: (l) => process.stderr.write(`${l}\n`) };

/**
 * Run the CLI on `argv` (without `node` and the script) and return the exit code: 0 success,
 * 1 a runtime error (missing file, corrupt checkpoint, mismatched weights), 2 a usage error
 * (unknown command, option or model name). Errors are printed to `io.err`, never thrown.
 */
export async function runCli(argv: string[], io: CliIO = PROCESS_IO): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        (cmd === undefined ? io.err : io.out)(USAGE);
        return cmd === undefined ? 2 : 0;
      case 'list':
        return listCommand(parseArgs(rest, []), io);
      case 'info':
        return await infoCommand(parseArgs(rest, COMMON, ['no-flops']), io);
      case 'convert':
        return await convertCommand(parseArgs(rest, [...COMMON, 'timm', 'model', 'out'], ['check']), io);
      case 'bench':
        return await benchCommand(parseArgs(rest, [...COMMON, 'batch', 'reps', 'threads']), io);
      case 'predict':
        return await predictCommand(parseArgs(rest, PREDICT_FLAGS.values, PREDICT_FLAGS.switches), io);
      case 'finetune':
        return await finetuneCommand(parseArgs(rest, FINETUNE_FLAGS.values, FINETUNE_FLAGS.switches), io);
      case 'pretrain':
        return await pretrainCommand(parseArgs(rest, PRETRAIN_FLAGS.values, PRETRAIN_FLAGS.switches), io);
      case 'detect':
        return await detectCommand(parseArgs(rest, DETECT_FLAGS.values, DETECT_FLAGS.switches), io);
      default:
        throw new UsageError(`unknown command '${cmd}' (expected list, info, convert, bench, predict, finetune, pretrain or detect)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      io.err(`run 'visbackbones help' for usage`);
      return 2;
    }
    if (
      e instanceof VisBackbonesError &&
      /^(unknown model |no pretrained cfg for model |model '[^']+' has no pretrained tag )/.test(e.message)
    ) {
      io.err(`error: ${e.message}`);
      if (!/visbackbones list|has no pretrained tag/.test(e.message)) io.err(`run 'visbackbones list' for the registered model names`);
      return 2;
    }
    io.err(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}
