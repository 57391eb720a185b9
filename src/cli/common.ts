import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { enableWasmThreads, wasmThreads } from '../backends/wasmThreads.js';
import { VisBackbonesError } from '../errors.js';
import { ParsedArgs, UsageError, flagInt, flagString } from './args.js';

/** Where a command writes: `out` for results, `err` for diagnostics (tests capture both). */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

let stdoutGuarded = false;

/**
 * Write a line to the process's stdout. A reader that stops early (`visbackbones list | head`) closes
 * the pipe: the resulting EPIPE ends the process quietly with exit code 0 instead of a stack trace.
 */
export function writeStdout(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    // one listener more than the worker threads' own (each adds one), so their count stays within the default limit
    process.stdout.setMaxListeners(process.stdout.getMaxListeners() + 1);
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
  process.stdout.write(`${line}\n`);
}

/** Backends the CLI can run on (Node). */
export const CLI_BACKENDS = ['wasm', 'cpu'] as const;

/**
 * Switch tfjs to `--backend` (default `def`), with a usage error for an unknown name. `threads` (the
 * `--threads` flag of a command that has one) runs tfjs-wasm and our kernels on that many threads.
 */
export async function selectBackend(args: ParsedArgs, def: (typeof CLI_BACKENDS)[number] = 'wasm', threads = 1): Promise<string> {
  const name = flagString(args, 'backend') ?? def;
  if (!(CLI_BACKENDS as readonly string[]).includes(name))
    throw new UsageError(`--backend ${name}: expected one of ${CLI_BACKENDS.join(', ')}`);
  if (threads > 1 && name !== 'wasm')
    throw new UsageError(`--threads ${threads}: only the wasm backend runs threaded (got --backend ${name})`);
  if (name === 'wasm' && !tf.findBackendFactory('wasm')) {
    try {
      await import('@tensorflow/tfjs-backend-wasm');
    } catch {
      throw new VisBackbonesError(
        'the wasm backend needs @tensorflow/tfjs-backend-wasm (npm install @tensorflow/tfjs-backend-wasm), or pass --backend cpu',
      );
    }
  }
  if (name === 'wasm' && threads !== wasmThreads()) await enableWasmThreads(threads);
  if (tf.getBackend() !== name) {
    const ok = await tf.setBackend(name);
    if (!ok) throw new VisBackbonesError(`could not initialise the ${name} backend`);
  }
  await tf.ready();
  return name;
}

/**
 * Model overrides from `--config` (a JSON object, or a JSON file; a fixture's `case.json` is read
 * through its `config` field) and `--img-size N`.
 */
export function modelOverrides(args: ParsedArgs): Record<string, unknown> {
  let overrides: Record<string, unknown> = {};
  const c = flagString(args, 'config');
  if (c !== undefined) {
    let text = c;
    if (!c.trim().startsWith('{')) {
      if (!existsSync(c)) throw new UsageError(`--config ${c}: not a JSON object and no such file`);
      text = readFileSync(c, 'utf8');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--config ${c}: invalid JSON (${(e as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new UsageError(`--config ${c}: expected a JSON object of camelCase config fields`);
    const obj = parsed as Record<string, unknown>;
    overrides =
      typeof obj.config === 'object' && obj.config !== null && !Array.isArray(obj.config)
        ? { ...(obj.config as Record<string, unknown>) }
        : { ...obj };
  }
  const size = flagInt(args, 'img-size');
  if (size !== undefined) overrides.imgSize = size;
  return overrides;
}

/** `n` with a metric suffix (`28.3 M`). */
export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

/** The `[H, W]` input size of a model's config (`imgSize` number or pair; default 224). */
export function imageSizeOf(config: Record<string, unknown>): [number, number] {
  const s = config.imgSize ?? 224;
  if (Array.isArray(s)) return [Number(s[0]), Number(s[1])];
  return [Number(s), Number(s)];
}
