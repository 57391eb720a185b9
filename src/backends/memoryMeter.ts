import * as tf from '@tensorflow/tfjs';
import { backendMemory, WasmBackend } from './kernelModule.js';

/**
 * Peak memory of a span of work (a training step), seen at every tensor allocation (the engine's
 * counters are observed: no profiling, no extra work per op): the highest `tf.memory().numBytes`
 * (tfjs counts every live tensor, so views that share a buffer, e.g. reshapes, count again), the
 * highest sum of distinct data buffers (what tensors really hold), and on the wasm backend the size
 * of its heap afterwards, which is the heap's high-water mark (an Emscripten heap never shrinks).
 * Buffers are followed from the import of this module on: those made before are not in the distinct
 * sum (import the package before making tensors).
 */

/** What {@link memorySpan}'s `stop()` reports. */
export interface MemoryPeak {
  /** Highest `tf.memory().numBytes` (bytes held by tensors) during the span. */
  peakTensorBytes: number;
  /** `tf.memory().numBytes` when the span stopped. */
  tensorBytes: number;
  /** Highest sum of the distinct data buffers of live tensors (views not counted again) during the span. */
  peakDataBytes: number;
  /** That sum when the span stopped. */
  dataBytes: number;
  /**
   * The wasm backend's heap size when the span stopped: the most the heap ever held (tensors, the
   * kernels' scratch, allocator slack), since it only grows. Null when the active backend is not wasm.
   */
  wasmHeapBytes: number | null;
}

type Info = { bytes?: number };
type EngineState = { numBytes: number; tensorInfo: WeakMap<object, Info> };

const observed = new WeakSet<object>();
/** Highest counts since the innermost running span started (or since the last stop). */
let peak = 0;
let peakData = 0;
/** Bytes of the distinct data buffers registered with the engine (since observed). */
let dataBytes = 0;

/**
 * Make the engine's byte counter report every new value to {@link peak}, and its buffer registry
 * (`tensorInfo`: one entry per data buffer, set when a buffer gets its first tensor, deleted when its
 * last goes) keep {@link dataBytes}; once per engine state.
 */
function observe(): EngineState {
  const state = (tf.engine() as unknown as { state: EngineState }).state;
  if (!observed.has(state)) {
    observed.add(state);
    let value = state.numBytes;
    Object.defineProperty(state, 'numBytes', {
      configurable: true,
      enumerable: true,
      get: () => value,
      set: (n: number) => {
        value = n;
        if (n > peak) peak = n;
      },
    });
    const reg = state.tensorInfo;
    const set = reg.set.bind(reg);
    const del = reg.delete.bind(reg);
    const counted = new WeakMap<object, number>();
    reg.set = (k: object, v: Info) => {
      const bytes = v?.bytes ?? 0;
      dataBytes += bytes - (counted.get(k) ?? 0);
      counted.set(k, bytes);
      if (dataBytes > peakData) peakData = dataBytes;
      return set(k, v);
    };
    reg.delete = (k: object) => {
      dataBytes -= counted.get(k) ?? 0;
      counted.delete(k);
      return del(k);
    };
  }
  return state;
}

observe();

/** Heap size of the active backend if it is tfjs-wasm, else null. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  try {
    return backendMemory(tf.backend() as unknown as WasmBackend).buffer.byteLength;
  } catch {
    return null;
  }
}

/**
 * Start measuring: `const span = memorySpan(); ...; const m = span.stop()`. Spans nest (an outer span's
 * peak includes its inner ones'); one that is never stopped costs nothing.
 */
export function memorySpan(): { stop(): MemoryPeak } {
  const state = observe();
  const outer = peak;
  const outerData = peakData;
  peak = state.numBytes;
  peakData = dataBytes;
  return {
    stop(): MemoryPeak {
      const mine = Math.max(peak, state.numBytes);
      const mineData = Math.max(peakData, dataBytes);
      peak = Math.max(outer, mine);
      peakData = Math.max(outerData, mineData);
      return { peakTensorBytes: mine, tensorBytes: state.numBytes, peakDataBytes: mineData, dataBytes, wasmHeapBytes: wasmHeapBytes() };
    },
  };
}
