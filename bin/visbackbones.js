#!/usr/bin/env node
// The `visbackbones` command. In a development checkout (src/ present) it runs the TypeScript
// sources through tsx; in the published package it runs the built CLI, dist/cli.js.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let runCli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ runCli } = await import(source.href));
} else {
  ({ runCli } = await import(new URL('../dist/cli.js', import.meta.url).href));
}
process.exitCode = await runCli(process.argv.slice(2));
