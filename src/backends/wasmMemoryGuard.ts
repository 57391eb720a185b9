import * as tf from '@tensorflow/tfjs';
import { VisBackbonesError } from '../errors.js';

/**
 * Out-of-memory on the wasm backend as an error, never a crash. tfjs-wasm allocates every tensor with
 * Emscripten's `malloc` on a heap that can grow to 4 GiB (wasm32) and does not check the result: a
 * request of 4 GiB or more wraps around in the i32 argument (a too small block, silently), and a failed
 * one returns 0, so the tensor is registered at address 0 and overwrites the heap. The guard wraps the
 * backend's allocator: such a request throws a {@link WasmOutOfMemoryError} naming the tensor, the
 * bytes it needed and the heap limit, before anything is written.
 */

/** The largest wasm32 heap Emscripten grows to (tfjs-wasm's `getHeapMax()`). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/** A tensor or scratch block did not fit the wasm heap. */
export class WasmOutOfMemoryError extends VisBackbonesError {
  constructor(
    message: string,
    readonly requestedBytes: number,
  ) {
    super(message);
    this.name = 'WasmOutOfMemoryError';
  }
}

type WasmModule = { _malloc(n: number): number; HEAPU8: Uint8Array };

const guarded = new WeakSet<object>();
let pending: { shape: number[]; dtype: string } | null = null;

function gb(n: number): string {
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

function oom(bytes: number, heap: number): WasmOutOfMemoryError {
  const what = pending ? `a ${pending.dtype} tensor of shape [${pending.shape.join(', ')}]` : 'a block';
  const live = tf.memory();
  return new WasmOutOfMemoryError(
    `out of memory on the wasm backend: ${what} needs ${gb(bytes)} (${bytes} bytes), the wasm heap is limited to ` +
      `${gb(WASM_HEAP_MAX_BYTES)} (now ${gb(heap)}, ${live.numTensors} live tensors, ${gb(live.numBytes)}): use a smaller batch or ` +
      'image size, gradient checkpointing, or dispose tensors no longer needed (tf.tidy)',
    bytes,
  );
}

function guardMalloc(wasm: WasmModule): void {
  if (guarded.has(wasm)) return;
  guarded.add(wasm);
  // Emscripten's `_malloc` is a stub that replaces itself with the native export on its first call: keep
  // the guard in front of whatever is assigned
  let malloc = wasm._malloc;
  const guard = (n: number): number => {
    if (n >= WASM_HEAP_MAX_BYTES) throw oom(n, wasm.HEAPU8.length);
    const p = malloc.call(wasm, n);
    if (p === 0 && n > 0) throw oom(n, wasm.HEAPU8.length);
    return p;
  };
  Object.defineProperty(wasm, '_malloc', {
    configurable: true,
    get: () => guard,
    set: (f: (n: number) => number) => {
      malloc = f;
    },
  });
}

type MoveFn = ((dataId: object, values: unknown, shape: number[], dtype: string, refCount: number) => void) & { visGuard?: true };

/** Wrap `move` (every tensor allocation) of the wasm backend class of `backend`. */
function guardBackend(backend: object | undefined): void {
  if (!backend) return;
  const proto = Object.getPrototypeOf(backend) as { move?: MoveFn };
  if (typeof proto.move !== 'function' || proto.move.visGuard) return;
  const move = proto.move;
  const wrapped: MoveFn = function (this: { wasm: WasmModule }, dataId, values, shape, dtype, refCount) {
    guardMalloc(this.wasm);
    pending = { shape, dtype };
    try {
      move.call(this, dataId, values, shape, dtype, refCount);
    } finally {
      pending = null;
    }
  };
  wrapped.visGuard = true;
  proto.move = wrapped;
}

type EngineInternals = {
  registry: Record<string, object | undefined>;
  initializeBackend: ((name: string) => { success: boolean | Promise<boolean>; asyncInit: boolean }) & { visGuard?: true };
};

/**
 * Guard every wasm backend the engine starts (`tf.setBackend('wasm')`, `useWasm`, re-created threaded
 * ones) without importing tfjs-wasm (which would register it and make it the default backend).
 */
function installWasmMemoryGuard(): void {
  const engine = tf.engine() as unknown as EngineInternals;
  guardBackend(engine.registry['wasm']);
  if (engine.initializeBackend.visGuard) return;
  const init = engine.initializeBackend;
  const wrapped = function (this: EngineInternals, name: string) {
    const r = init.call(this, name);
    if (name === 'wasm') {
      if (r.success instanceof Promise) void r.success.then((ok) => ok && guardBackend(this.registry['wasm']));
      else if (r.success) guardBackend(this.registry['wasm']);
    }
    return r;
  } as EngineInternals['initializeBackend'];
  wrapped.visGuard = true;
  engine.initializeBackend = wrapped;
}

installWasmMemoryGuard();
