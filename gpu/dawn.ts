/**
 * WebGPU in plain Node for tfjs's 'webgpu' backend, from the `webgpu` npm package (Dawn as
 * `dawn.node`), which is not a project dependency: gpu/pack.sh unpacks it to .gpu-cache/webgpu/
 * (or set WEBGPU_MODULE to its index.js). Used by gpu/dispatchCount.ts and the webgpu kernel tests.
 * On a machine without a GPU, Mesa's lavapipe gives an adapter: `eval "$(bash gpu/lavapipe.sh)"`.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Where the `webgpu` package's index.js is looked for: WEBGPU_MODULE, else .gpu-cache/webgpu/index.js of the repo. */
export function webgpuModulePath(): string {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  return resolve(process.env.WEBGPU_MODULE ?? join(repo, '.gpu-cache', 'webgpu', 'index.js'));
}

/** The outcome of {@link setupDawnWebgpu}: ok with the adapter's description, or why not. */
export type DawnSetup = { ok: true; adapter: string } | { ok: false; reason: string };

let setup: Promise<DawnSetup> | null = null;

/**
 * Load dawn.node, install `navigator.gpu` and the WebGPU globals, import tfjs's webgpu backend and
 * initialise it (without selecting it: `tf.setBackend('webgpu')` after). Resolves `{ ok: false,
 * reason }` where the package, an adapter or the backend is missing; never throws. Once per process.
 */
export function setupDawnWebgpu(): Promise<DawnSetup> {
  setup ??= (async (): Promise<DawnSetup> => {
    const path = webgpuModulePath();
    if (!existsSync(path)) return { ok: false, reason: `no 'webgpu' package at ${path} (run bash gpu/pack.sh, or set WEBGPU_MODULE)` };
    try {
      const dawn = (await import(pathToFileURL(path).href)) as { create(flags: string[]): GPU; globals: Record<string, unknown> };
      Object.assign(globalThis, dawn.globals);
      const gpu = dawn.create((process.env.VB_DAWN_FLAGS ?? '').split(',').filter(Boolean));
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) return { ok: false, reason: 'no WebGPU adapter (on a machine without a GPU: eval "$(bash gpu/lavapipe.sh)")' };
      const info = (adapter as unknown as { info?: { vendor?: string; architecture?: string; description?: string } }).info;
      const nav = { ...((globalThis as { navigator?: object }).navigator ?? {}), gpu, userAgent: `node ${process.version}` };
      Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
      // the backend registers itself only if navigator.gpu exists when its module is evaluated
      await import('@tensorflow/tfjs-backend-webgpu');
      const prev = tf.getBackend();
      const ok = await tf.setBackend('webgpu');
      if (!ok) return { ok: false, reason: "tfjs's webgpu backend did not initialise" };
      if (prev) await tf.setBackend(prev);
      return { ok: true, adapter: [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ') || 'adapter' };
    } catch (e) {
      return { ok: false, reason: `WebGPU setup failed: ${e instanceof Error ? e.message : String(e)}` };
    }
  })();
  return setup;
}
