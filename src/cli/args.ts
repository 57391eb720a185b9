import { VisBackbonesError } from '../errors.js';

/** A command-line mistake (unknown command or flag, missing or malformed value): exit code 2. */
export class UsageError extends VisBackbonesError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parsed command line: positional arguments and `--flag value` / `--flag=value` / `--switch` options. */
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/**
 * Parse `argv` (without `node` and the script). `valueFlags` take a value, `switches` take none;
 * any other `--name` is a {@link UsageError} naming the flags the command accepts.
 */
export function parseArgs(argv: string[], valueFlags: string[], switches: string[] = []): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const known = () => [...valueFlags.map((f) => `--${f} VALUE`), ...switches.map((s) => `--${s}`)].join(', ') || 'none';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || a === '--') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (switches.includes(name)) {
      if (eq > 0) throw new UsageError(`--${name} takes no value (got '${a}')`);
      flags.set(name, true);
    } else if (valueFlags.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else {
      throw new UsageError(`unknown option '--${name}'; this command accepts: ${known()}`);
    }
  }
  return { positional, flags };
}

/** A flag's string value (or undefined). */
export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A flag's positive-integer value, checked. */
export function flagInt(args: ParsedArgs, name: string, def?: number): number | undefined {
  const v = flagString(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} ${v}: expected a positive integer`);
  return n;
}
