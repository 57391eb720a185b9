import { getModelEntry, listModels } from '../models/registry.js';
import { ParsedArgs, UsageError } from './args.js';
import { CliIO } from './common.js';

/** `visbackbones list [filter]`: the registered variants (wildcards `*`/`?` or a substring), with family and input size. */
export function listCommand(args: ParsedArgs, io: CliIO): number {
  if (args.positional.length > 1)
    throw new UsageError(`list takes at most one filter, got ${args.positional.length}: ${args.positional.join(' ')}`);
  const filter = args.positional[0];
  const names = listModels(filter);
  if (names.length === 0) {
    io.err(`no model matches '${filter}' (${listModels().length} registered; try 'visbackbones list' without a filter)`);
    return 1;
  }
  const width = Math.max(...names.map((n) => n.length));
  for (const n of names) {
    const e = getModelEntry(n);
    const [, h, w] = e.pretrainedCfg.inputSize;
    io.out(`${n.padEnd(width)}  ${e.family.padEnd(10)} ${h}x${w}`);
  }
  return 0;
}
