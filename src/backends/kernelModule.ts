import * as tf from '@tensorflow/tfjs';
import { KERNELS_RELAXED_SHARED_WASM, KERNELS_RELAXED_WASM, KERNELS_SHARED_WASM, KERNELS_WASM } from './native/kernelsWasm.js';
import { VisBackbonesError } from '../errors.js';
import type { KernelExports, KernelName } from './kernelAbi.js';
import { KernelPool, NodeWorkerCtor, createKernelPool } from './kernelPool.js';

export type { KernelExports, KernelName } from './kernelAbi.js';

/**
 * Our WebAssembly kernel module (built from `native/assembly`), instantiated once per tfjs-wasm
 * backend over that backend's own memory: kernels read and write tensors in place at their heap
 * offsets, with no copies. The threaded tfjs binary has a shared memory, the others a plain one; the
 * module comes in one variant for each, and each in two builds: SIMD128, and relaxed SIMD (fused
 * multiply-adds, `f32x4.relaxed_madd`), used where the runtime validates relaxed SIMD (Chrome >= 114,
 * Node >= 22; Node 20/21 with `--experimental-wasm-relaxed-simd`) unless {@link setKernelSimd} says not.
 */

/** What a tfjs kernel function receives. */
export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
/** What a tfjs kernel function returns. */
export type KernelResult = tf.TensorInfo | tf.TensorInfo[];
/** The kernel one of ours replaced, for the cases ours does not cover. */
export type Previous = (args: KernelArgs) => KernelResult;

/** Product of a shape's sizes. */
export const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/**
 * Work units (multiply-adds; elementwise: ~8 per element; copies: bytes) per thread below which
 * splitting costs more than it saves. Within a forward pass the pool's workers are still spinning from
 * the previous op (about 0.1 ms), so a split costs a few microseconds, not a wake-up: measured at 2
 * threads on the 2-core machine (forward at batch 1, 15 interleaved calls each), 2^16 against the
 * earlier 2^20 took convnextv2_atto from 74.8 to 67.3 ms (-10%), vit_small from 252.7 to 244.0 ms and
 * swinv2_tiny from 378.1 to 368.3 ms; 2^14 and 2^15 were no better.
 */
export const MIN_WORK_PER_THREAD = 1 << 16;
let minWorkPerThread = MIN_WORK_PER_THREAD;

/**
 * Set the split threshold of {@link threadsFor} (default {@link MIN_WORK_PER_THREAD}); returns the
 * previous one. For measuring where splitting pays (bench/suites/15-threads.ts), not for users.
 */
export function setMinWorkPerThread(units: number): number {
  const prev = minWorkPerThread;
  minWorkPerThread = Math.max(1, units);
  return prev;
}

/** Threads worth using for `work` units on `mod` (1 without a pool). */
export function threadsFor(mod: KernelModule, work: number): number {
  return Math.max(1, Math.min(mod.threads, Math.floor(work / minWorkPerThread)));
}

/** The parts of tfjs-wasm's `BackendWasm` this package relies on. */
export interface WasmBackend {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    HEAPU8: Uint8Array;
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
  };
  dataIdMap: { get(dataId: unknown): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: unknown, force?: boolean): boolean;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The four builds: memory (plain / shared) x instruction set (SIMD128 / relaxed SIMD). */
type Variant = 'plain' | 'shared' | 'relaxed' | 'relaxedShared';
const SOURCES: Record<Variant, string> = {
  plain: KERNELS_WASM,
  shared: KERNELS_SHARED_WASM,
  relaxed: KERNELS_RELAXED_WASM,
  relaxedShared: KERNELS_RELAXED_SHARED_WASM,
};

const compiled: Partial<Record<Variant, WebAssembly.Module>> = {};
/** Why a variant could not be compiled (e.g. a runtime without WebAssembly SIMD); it is not retried. */
const failed: Partial<Record<Variant, unknown>> = {};
let compiling: Promise<void> | null = null;

/** Instruction set of our kernels: `relaxed` (fused multiply-adds) or `simd128`. */
export type KernelSimd = 'relaxed' | 'simd128';

/**
 * `(module (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd))`: valid
 * exactly where the runtime has relaxed SIMD.
 */
const RELAXED_PROBE = (() => {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x85, 0x02, 0x0b];
  const head = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0];
  return new Uint8Array([...head, 10, body.length + 2, 1, body.length, ...body]);
})();

let relaxedSupport: boolean | undefined;
/** Whether this runtime has WebAssembly relaxed SIMD (feature detection, once per process). */
export function relaxedSimdSupported(): boolean {
  if (relaxedSupport === undefined) {
    try {
      relaxedSupport = typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_PROBE);
    } catch {
      relaxedSupport = false;
    }
  }
  return relaxedSupport;
}

let simdChoice: 'auto' | KernelSimd = 'auto';

/**
 * Which build of our kernels backends use from now on: `auto` (default) relaxed SIMD where the
 * runtime has it, SIMD128 otherwise; `simd128` always the latter; `relaxed` requires relaxed SIMD
 * (an error where the runtime lacks it). Kernel modules already bound to a backend are re-bound on
 * their next call (they hold no tensors), so this may be switched at any time, e.g. to time both.
 */
export function setKernelSimd(mode: 'auto' | KernelSimd): void {
  if (mode !== 'auto' && mode !== 'relaxed' && mode !== 'simd128')
    throw new VisBackbonesError(`setKernelSimd: mode must be 'auto', 'relaxed' or 'simd128', got ${String(mode)}`);
  if (mode === 'relaxed' && !relaxedSimdSupported())
    throw new VisBackbonesError(
      "setKernelSimd('relaxed'): this runtime has no WebAssembly relaxed SIMD (it needs Chrome >= 114, Node >= 22, or Node 20/21 " +
        "started with --experimental-wasm-relaxed-simd); use 'auto' or 'simd128'",
    );
  if (mode === simdChoice) return;
  simdChoice = mode;
  disposeKernelModules();
  if (compiling && !syncCompileAllowed()) {
    // a browser compiles asynchronously: start the build now chosen (ours run again once it is ready)
    void compileAsync(variantFor(false));
    if (typeof SharedArrayBuffer !== 'undefined') void compileAsync(variantFor(true));
  }
}

/** The build of our kernels that backends bind from now on. */
export function kernelSimd(): KernelSimd {
  return simdChoice === 'simd128' || !relaxedSimdSupported() ? 'simd128' : 'relaxed';
}

function variantFor(shared: boolean, simd: KernelSimd = kernelSimd()): Variant {
  if (simd === 'relaxed') return shared ? 'relaxedShared' : 'relaxed';
  return shared ? 'shared' : 'plain';
}

/**
 * Whether this runtime may compile our module synchronously: Node (and runtimes that present
 * themselves as it). Browsers refuse synchronous compilation of modules over 4 KB on the main thread.
 */
function syncCompileAllowed(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

function compileSync(variant: Variant): WebAssembly.Module | null {
  if (compiled[variant] || failed[variant] !== undefined) return compiled[variant] ?? null;
  try {
    compiled[variant] = new WebAssembly.Module(decodeBase64(SOURCES[variant]));
  } catch (e) {
    failed[variant] = e;
  }
  return compiled[variant] ?? null;
}

async function compileAsync(variant: Variant): Promise<void> {
  if (compiled[variant] || failed[variant] !== undefined) return;
  try {
    compiled[variant] = await WebAssembly.compile(decodeBase64(SOURCES[variant]));
  } catch (e) {
    failed[variant] = e;
  }
}

/**
 * Compile the kernel module (idempotent; started when the package is imported). In Node the
 * single-memory variant is compiled synchronously, before this returns, so our kernels run from the
 * first call; elsewhere the variants compile asynchronously, and until they are ready
 * {@link kernelModuleFor} returns null (every kernel of ours then runs the one it replaced). The
 * promise resolves when the module is ready and rejects if it cannot be compiled (a runtime without
 * WebAssembly SIMD): the kernels it replaced then stay in use. The build compiled is the one
 * {@link kernelSimd} names (relaxed SIMD where the runtime has it); should that fail, SIMD128.
 */
export function compileKernels(): Promise<void> {
  if (!compiling) {
    const simd = kernelSimd();
    if (syncCompileAllowed()) {
      if (!compileSync(variantFor(false, simd))) compileSync('plain');
      compiling = Promise.resolve();
    } else {
      const one = async (shared: boolean) => {
        await compileAsync(variantFor(shared, simd));
        if (!compiled[variantFor(shared, simd)]) await compileAsync(variantFor(shared, 'simd128'));
      };
      // the shared-memory variant only where a shared memory can exist (a cross-origin isolated page)
      compiling = one(false).then(() => (typeof SharedArrayBuffer !== 'undefined' ? one(true) : undefined));
    }
    compiling = compiling.then(() => {
      if (!kernelsCompiled())
        throw new Error(`the visbackbones wasm kernel module could not be compiled (it needs WebAssembly SIMD): ${String(failed.plain)}`);
    });
    compiling.catch(() => {}); // a failure is reported to those who await it, not as an unhandled rejection
  }
  return compiling;
}

/** Whether the kernel module (single-memory variant, either build) is compiled. */
export function kernelsCompiled(): boolean {
  return compiled.plain !== undefined || compiled.relaxed !== undefined;
}

/**
 * The compiled variant for a memory, in the build {@link kernelSimd} names (SIMD128 if that one
 * failed), compiling it now where that is allowed (Node); null if not (yet) available.
 */
function moduleFor(shared: boolean): { module: WebAssembly.Module; simd: KernelSimd } | null {
  for (const simd of kernelSimd() === 'relaxed' ? (['relaxed', 'simd128'] as const) : (['simd128'] as const)) {
    const variant = variantFor(shared, simd);
    const m = compiled[variant] ?? (syncCompileAllowed() ? compileSync(variant) : null);
    if (m) return { module: m, simd };
    // relaxed still compiling (browser) or failed: fall through to SIMD128 only once it has failed
    if (failed[variant] === undefined) return null;
  }
  return null;
}

/** Whether the variant(s) a memory needs failed to compile for good. */
function moduleFailed(shared: boolean): boolean {
  return failed[variantFor(shared, 'simd128')] !== undefined;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
}

/** The WebAssembly memory of a tfjs-wasm backend (exported by the plain binaries, imported by the threaded one). */
export function backendMemory(backend: WasmBackend): WebAssembly.Memory {
  const m = backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;
  if (!m) throw new Error('tfjs-wasm backend exposes no WebAssembly.Memory');
  return m;
}

/** One instance of the kernel module bound to one backend, with its scratch buffers. */
export class KernelModule {
  readonly exports: KernelExports;
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /** The build this instance runs: `relaxed` (fused multiply-adds) or `simd128`. */
  readonly simd: KernelSimd;
  /** Worker threads running the same module on the same memory (null: main thread only). */
  pool: KernelPool | null = null;
  private scratchPtr: number[] = [];
  private scratchBytes: number[] = [];
  private zeroPtr = 0;

  /** The compiled module this instance runs (the pool's workers instantiate the same). */
  readonly module: WebAssembly.Module;

  constructor(readonly backend: WasmBackend) {
    this.memory = backendMemory(backend);
    this.shared = isShared(this.memory);
    const found = moduleFor(this.shared);
    if (!found) throw new Error(`the visbackbones kernel module (${this.shared ? 'shared' : 'plain'} memory) is not compiled`);
    this.module = found.module;
    this.simd = found.simd;
    const instance = new WebAssembly.Instance(found.module, {
      env: {
        memory: this.memory,
        abort: () => {
          throw new Error('visbackbones kernel aborted');
        },
      },
    });
    this.exports = instance.exports as unknown as KernelExports;
  }

  /** Heap offset (bytes) of a tensor's data, as an unsigned number (tensors may lie past 2 GiB). */
  offset(t: tf.TensorInfo): number {
    const d = this.backend.dataIdMap.get(t.dataId);
    if (!d) throw new Error('tensor is not on this wasm backend');
    return d.memoryOffset >>> 0;
  }

  /** Number of threads kernels may split into (1 + pool workers). */
  get threads(): number {
    return 1 + (this.pool?.size ?? 0);
  }

  /** A scratch buffer of at least `bytes` bytes for thread `t` (16-byte aligned; kept between calls). */
  scratch(bytes: number, t = 0): number {
    if ((this.scratchBytes[t] ?? 0) < bytes) {
      if (this.scratchPtr[t]) this.backend.wasm._free(this.scratchPtr[t]);
      const size = Math.max(bytes, 2 * (this.scratchBytes[t] ?? 0), 1 << 16);
      this.scratchPtr[t] = this.backend.wasm._malloc(size + 16) >>> 0;
      this.scratchBytes[t] = size;
    }
    // `>>> 0`: past 2 GiB a bitwise result is a negative int32, which JavaScript would index from the end
    return ((this.scratchPtr[t] + 15) & ~15) >>> 0;
  }

  /** Offset of 16 zero bytes. */
  zero(): number {
    if (!this.zeroPtr) {
      this.zeroPtr = (((this.backend.wasm._malloc(32) >>> 0) + 15) & ~15) >>> 0;
      new Uint8Array(this.memory.buffer, this.zeroPtr, 16).fill(0);
    }
    return this.zeroPtr;
  }

  /**
   * Run kernel `name` once per entry of `argsPerThread`: the first on this thread, the others on the
   * pool's workers (in parallel), returning when all are done. Entries must touch disjoint outputs.
   */
  run(name: KernelName, argsPerThread: number[][]): void {
    const f = this.exports[name] as (...a: number[]) => void;
    if (argsPerThread.length > 1 && this.pool) {
      this.pool.run(name, argsPerThread, (args) => f(...args));
      return;
    }
    for (const args of argsPerThread) f(...args);
  }

  /** Free the scratch buffers and stop the workers. */
  dispose(): void {
    for (const p of this.scratchPtr) if (p) this.backend.wasm._free(p);
    this.scratchPtr = [];
    this.scratchBytes = [];
    this.pool?.terminate();
    this.pool = null;
  }
}

const instances = new WeakMap<object, KernelModule>();
const live = new Set<KernelModule>();
let poolThreads = 1;
let poolWorker: NodeWorkerCtor | null = null;

/** Backends our module cannot be instantiated on (no memory, or instantiation failed): not retried. */
const unusable = new WeakSet<object>();

/**
 * The kernel module of a backend, instantiated on first use; null if it cannot be (e.g. the backend
 * exposes no memory) or is not compiled yet (a browser, until {@link compileKernels} resolves).
 */
export function kernelModuleFor(backend: unknown): KernelModule | null {
  const b = backend as WasmBackend;
  let m = instances.get(b);
  if (m) return m;
  if (unusable.has(b)) return null;
  let memory: WebAssembly.Memory;
  try {
    memory = backendMemory(b);
  } catch {
    unusable.add(b);
    return null;
  }
  if (!moduleFor(isShared(memory))) {
    // not compiled yet (asynchronous compile in progress): retried on the next call
    if (moduleFailed(isShared(memory))) unusable.add(b);
    return null;
  }
  try {
    m = new KernelModule(b);
  } catch {
    unusable.add(b);
    return null;
  }
  if (poolThreads > 1 && m.shared && poolWorker) m.pool = createKernelPool(m.module, m.memory, poolThreads - 1, poolWorker);
  instances.set(b, m);
  live.add(m);
  return m;
}

/** Dispose every kernel module instance (before their backends go away). */
export function disposeKernelModules(): void {
  for (const m of live) {
    m.dispose();
    instances.delete(m.backend);
  }
  live.clear();
}

/**
 * Use `n` threads (this one plus `n - 1` workers) for our kernels on backends with a shared memory
 * (the threaded tfjs binary: see `enableWasmThreads`). Takes effect for backends created afterwards.
 */
export function setKernelThreads(n: number, worker: NodeWorkerCtor | null): void {
  poolThreads = Math.max(1, Math.floor(n));
  poolWorker = worker;
}

/** Threads our kernels use on backends created from now on. */
export function kernelThreads(): number {
  return poolWorker ? poolThreads : 1;
}

/** Split `[0, n)` into at most `parts` contiguous ranges of near-equal size, each a multiple of `align` (but the last). */
export function splitRange(n: number, parts: number, align = 1): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const units = Math.ceil(n / align);
  const p = Math.max(1, Math.min(parts, units));
  let start = 0;
  for (let i = 0; i < p; i++) {
    const end = Math.min(n, Math.round(((i + 1) * units) / p) * align);
    if (end > start) out.push([start, end]);
    start = end;
  }
  return out;
}
