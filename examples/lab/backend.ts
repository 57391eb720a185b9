/**
 * The lab's backend choice: `webgpu` where the browser offers an adapter, else `wasm`, threaded when
 * the page is cross-origin isolated (`SharedArrayBuffer` exists: served with COOP `same-origin` and
 * COEP `require-corp`), else single-threaded. tfjs-wasm's binaries are emitted by Vite as assets next
 * to the page, so any static server serves them.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.wasm?url';
import threadedGlue from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js?raw';
import { useWasm } from '../../src/index.js';

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

export type BackendChoice = 'auto' | 'webgpu' | 'wasm' | 'webgl' | 'cpu';

/** The backend that runs, in words (`wasm (1 thread)`). */
export interface BackendInfo {
  name: string;
  threads: number;
  label: string;
}

/** Why webgpu is not available here, or '' when an adapter exists. */
export async function webgpuUnavailable(): Promise<string> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'navigator.gpu is undefined';
  const adapter = await gpu.requestAdapter().catch(() => null);
  return adapter ? '' : 'requestAdapter() returned null';
}

const GLUE_PREFIX = 'var WasmBackendModuleThreadedSimd = ';

/**
 * Run `init` with the pthread workers' script being Emscripten's glue file as published. tfjs-wasm
 * hands its workers `GLUE_PREFIX + factory.toString()`, which breaks once a bundler has rewritten the
 * factory (its `require` calls become imports the worker does not have: "e is not defined"), so
 * while the threaded backend starts that one Blob is made from the original file instead.
 */
async function withUnbundledGlue<T>(init: () => Promise<T>): Promise<T> {
  const NativeBlob = globalThis.Blob;
  class GlueBlob extends NativeBlob {
    constructor(parts?: BlobPart[], opts?: BlobPropertyBag) {
      const first = parts?.[0];
      super(typeof first === 'string' && first.startsWith(GLUE_PREFIX) ? [threadedGlue] : parts, opts);
    }
  }
  globalThis.Blob = GlueBlob;
  try {
    return await init();
  } finally {
    globalThis.Blob = NativeBlob;
  }
}

/** Start the chosen backend (`auto`: webgpu, else wasm as described above). */
export async function startBackend(choice: BackendChoice): Promise<BackendInfo> {
  let name = choice;
  if (choice === 'auto') name = (await webgpuUnavailable()) ? 'wasm' : 'webgpu';
  if (name === 'wasm') {
    const threads = self.crossOriginIsolated ? Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1)) : 1;
    if (threads > 1) await withUnbundledGlue(() => useWasm({ threads }));
    else await useWasm({ threads });
    return {
      name,
      threads,
      label: `wasm (${threads} thread${threads > 1 ? 's' : ''}${self.crossOriginIsolated ? ', cross-origin isolated' : ''})`,
    };
  }
  const ok = await tf.setBackend(name).catch(() => false);
  if (!ok) throw new Error(`backend '${name}' is not available in this browser`);
  await tf.ready();
  return { name, threads: 1, label: name };
}
