import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../errors.js';
import { KernelSimd, disposeKernelModules, setKernelSimd, setKernelThreads } from './kernelModule.js';
import type { NodeWorkerCtor } from './kernelPool.js';
import { registerFastKernels, unregisterFastKernels } from './fastKernels.js';

/**
 * Multi-threaded tfjs-wasm in Node.
 *
 * tfjs-wasm 4.22 ships a threaded SIMD binary but never loads it in Node: `WASM_HAS_MULTITHREAD_SUPPORT`
 * is hard-wired false there (tensorflow/tfjs#3830), its loader hands Emscripten a `blob:` URL for the
 * pthread worker script, which Node's `worker_threads` rejects, and the backend caps its thread pool
 * at half the logical cores. {@link enableWasmThreads} sets the flag, gives Emscripten a worker script
 * on disk (a small bootstrap in the OS temp folder that runs tfjs's own worker code and points it at
 * `wasm-out/tfjs-backend-wasm-threaded-simd.js`), reports enough cores for the requested count while
 * the backend starts, then restores everything it touched. Our own kernels (`fastKernels.ts`,
 * registered on import) then split their work over the same number of threads.
 *
 * Browsers: nothing here changes them. tfjs-wasm already picks the threaded binary in a page that is
 * cross-origin isolated, i.e. served with `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp` (so `SharedArrayBuffer` exists; check
 * `self.crossOriginIsolated`); otherwise it runs single-threaded. There, `enableWasmThreads(n)` only
 * calls tfjs's `setThreadsCount(n)` (before the backend starts), and our kernels stay on one thread.
 */

/** Options of {@link useWasm}. */
export interface UseWasmOptions {
  /** Threads for XNNPACK and our kernels (Node; default 1 = the single-threaded SIMD binary). */
  threads?: number;
  /**
   * Our kernels over tfjs-wasm's (default true: they are registered on import, and this waits until
   * they are ready, which matters in a browser; true also rejects where they cannot be compiled);
   * false puts tfjs-wasm's back (`unregisterFastKernels`).
   */
  fastKernels?: boolean;
  /**
   * Build of our kernels (see `setKernelSimd`): `auto` (relaxed SIMD, i.e. fused multiply-adds, where
   * the runtime has it), `relaxed` (an error where it has not) or `simd128`. Unset: left as it is.
   */
  simd?: 'auto' | KernelSimd;
}

type NodeOs = { cpus(): unknown[]; tmpdir(): string };
type NodeFs = {
  existsSync(p: string): boolean;
  readFileSync(p: string, enc: 'utf8'): string;
  writeFileSync(p: string, s: string): void;
  renameSync(a: string, b: string): void;
};
type WasmPackage = { setThreadsCount(n: number): void; getThreadsCount(): number };

/** Import a Node built-in, hidden from browser bundlers (only reached in Node). */
function nodeImport(id: string): Promise<unknown> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ id);
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

let configuredThreads = 1;

/** The thread count last asked for with {@link enableWasmThreads} (1 if never). */
export function wasmThreads(): number {
  return configuredThreads;
}

/**
 * Run tfjs-wasm with `n` threads: in Node, load the threaded SIMD binary with a pool of `n` threads
 * (n = 1 goes back to the single-threaded SIMD binary). If the wasm backend already exists it is
 * re-created, so tensors held on it become invalid: call this before making any. The active backend
 * is left as it was. Results are the same as single-threaded (tested).
 */
export async function enableWasmThreads(n: number): Promise<void> {
  check(Number.isInteger(n) && n >= 1 && n <= 64, () => `enableWasmThreads: n must be an integer in [1, 64], got ${n}`);
  const held = variablesOnWasm();
  check(
    held === 0,
    () =>
      `enableWasmThreads(${n}) / useWasm({ threads: ${n} }) re-creates the wasm backend, which would destroy the ${held} variable(s) ` +
      '(model weights) held on it: call it first, before building or loading any model (or dispose the models, ' +
      'keeping their weights with saveSafetensors(model), and load them into new ones afterwards)',
  );
  const wasm = (await importWasmPackage('enableWasmThreads')) as unknown as WasmPackage;
  if (!isNode()) {
    wasm.setThreadsCount(n);
    configuredThreads = n;
    return;
  }
  // read the active backend's name without initialising one: tf.getBackend() and tf.findBackend('wasm')
  // would start the single-threaded wasm backend right here, before the flag below is set
  const previous = (tf.engine() as unknown as { backendName: string | null }).backendName;
  const factory = tf.findBackendFactory('wasm');
  check(factory != null, () => 'enableWasmThreads: the wasm backend is not registered (import @tensorflow/tfjs-backend-wasm)');
  // always re-register: drops an instance that exists or is still initialising with the old thread count
  disposeKernelModules();
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory!, 2);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', n > 1);
  wasm.setThreadsCount(n);
  const { Worker } = (await nodeImport('node:worker_threads')) as { Worker: NodeWorkerCtor };
  setKernelThreads(n, n > 1 ? Worker : null);
  configuredThreads = n;
  if (n > 1) {
    await withNodePatches(n, async () => {
      check(await tf.setBackend('wasm'), () => 'enableWasmThreads: the threaded wasm backend failed to initialise');
    });
    const actual = wasm.getThreadsCount();
    check(actual === n, () => `enableWasmThreads: asked for ${n} threads, tfjs-wasm started ${actual}`);
    unrefPthreads();
  } else {
    check(await tf.setBackend('wasm'), () => 'enableWasmThreads: the wasm backend failed to initialise');
  }
  if (previous && previous !== 'wasm') await tf.setBackend(previous);
}

/**
 * Switch to the wasm backend, optionally threaded (Node), with our kernels ready (or, with
 * `fastKernels: false`, tfjs-wasm's own): `await useWasm({ threads: 2 })`.
 */
export async function useWasm(opts: UseWasmOptions = {}): Promise<void> {
  const threads = opts.threads ?? 1;
  if (opts.simd !== undefined) setKernelSimd(opts.simd);
  if (!tf.findBackendFactory('wasm')) await importWasmPackage('useWasm');
  check(tf.findBackendFactory('wasm') != null, () => `useWasm: the wasm backend is not registered: ${INSTALL_WASM}`);
  if (threads !== configuredThreads || (threads > 1 && !tf.findBackend('wasm'))) await enableWasmThreads(threads);
  if (opts.fastKernels === false) {
    unregisterFastKernels();
  } else {
    // by default a runtime that cannot compile ours (no WebAssembly SIMD) keeps tfjs-wasm's; asked for explicitly, it is an error
    await registerFastKernels().catch((e: unknown) => {
      if (opts.fastKernels) throw e;
    });
  }
  check(await tf.setBackend('wasm'), () => 'useWasm: the wasm backend failed to initialise');
  await tf.ready();
}

const INSTALL_WASM =
  `install the package (npm install @tensorflow/tfjs-backend-wasm@${tf.version_core}) and import it once ` +
  "(import '@tensorflow/tfjs-backend-wasm') before calling this";

/** The tfjs-wasm package, or a clear error saying to install it. */
async function importWasmPackage(caller: string): Promise<unknown> {
  try {
    return await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new VisBackbonesError(`${caller}: could not load @tensorflow/tfjs-backend-wasm (${(e as Error).message}): ${INSTALL_WASM}`);
  }
}

/** Live variables whose data is on the wasm backend (lost when it is re-created). */
function variablesOnWasm(): number {
  const eng = tf.engine() as unknown as {
    registry: Record<string, tf.KernelBackend | undefined>;
    state: { registeredVariables: Record<string, tf.Variable>; tensorInfo: WeakMap<object, { backend: tf.KernelBackend }> };
  };
  const b = eng.registry['wasm'];
  if (!b) return 0;
  let n = 0;
  for (const v of Object.values(eng.state.registeredVariables)) if (!v.isDisposed && eng.state.tensorInfo.get(v.dataId)?.backend === b) n++;
  return n;
}

/**
 * Let Node exit while the backend's pthreads idle: Emscripten keeps a worker that runs a thread
 * referenced, and XNNPACK's pool threads run (blocked on a futex) for the life of the backend.
 */
function unrefPthreads(): void {
  const b = tf.findBackend('wasm') as unknown as { wasm?: { PThread?: { runningWorkers?: unknown[]; unusedWorkers?: unknown[] } } } | null;
  const p = b?.wasm?.PThread;
  for (const w of [...(p?.runningWorkers ?? []), ...(p?.unusedWorkers ?? [])]) (w as { unref?: () => void }).unref?.();
}

/** Run `init` with the three Node-side patches the threaded loader needs, restoring them afterwards. */
async function withNodePatches(n: number, init: () => Promise<void>): Promise<void> {
  const os = ((await nodeImport('node:os')) as { default: NodeOs }).default;
  const fs = ((await nodeImport('node:fs')) as { default: NodeFs }).default;
  const { createRequire } = (await nodeImport('node:module')) as { createRequire(from: string): { resolve(id: string): string } };
  const here = typeof __filename === 'string' ? __filename : import.meta.url;
  const req = createRequire(here);
  const mainJs = req.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const workerJs = req.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
  const bootstrap = writeBootstrap(fs, os.tmpdir(), mainJs, workerJs);

  const url = URL as unknown as { createObjectURL(b: unknown): string };
  const createObjectURL = url.createObjectURL;
  const cpus = os.cpus;
  url.createObjectURL = (b: unknown) =>
    (b as { type?: string })?.type === 'application/javascript' ? bootstrap : createObjectURL.call(URL, b);
  os.cpus = () => {
    const real = cpus.call(os);
    const out = real.slice();
    while (out.length < 2 * n) out.push(real[0]);
    return out;
  };
  try {
    await init();
  } finally {
    url.createObjectURL = createObjectURL;
    os.cpus = cpus;
  }
}

/**
 * The pthread worker script: tfjs's own worker code (a string in `…threaded-simd.worker.js`), with
 * `URL.createObjectURL` answering the path of the Emscripten glue, which Node can `importScripts`
 * (read and evaluate) where it cannot a `blob:` URL. Written once per content into the temp folder.
 */
function writeBootstrap(fs: NodeFs, tmp: string, mainJs: string, workerJs: string): string {
  const src = [
    '// visbackbones: tfjs-wasm pthread worker bootstrap for Node (see src/backends/wasmThreads.ts)',
    `const mainJs = ${JSON.stringify(mainJs)};`,
    'URL.createObjectURL = () => mainJs;',
    'URL.revokeObjectURL = () => {};',
    `const code = require(${JSON.stringify(workerJs)}).wasmWorkerContents;`,
    // the contents hold "\n" escapes that tfjs re-escapes before making its blob: do the same
    'eval(code.split(String.fromCharCode(10)).join(String.fromCharCode(92, 110)));',
    '',
  ].join('\n');
  let h = 0;
  for (let i = 0; i < src.length; i++) h = (Math.imul(h, 31) + src.charCodeAt(i)) | 0;
  const path = `${tmp}/visbackbones-wasm-pthread-${(h >>> 0).toString(16)}.cjs`;
  if (!fs.existsSync(path) || fs.readFileSync(path, 'utf8') !== src) {
    const part = `${path}.${Date.now()}.tmp`;
    fs.writeFileSync(part, src);
    fs.renameSync(part, path);
  }
  return path;
}
