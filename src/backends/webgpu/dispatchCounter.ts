import * as tf from '@tensorflow/tfjs';

/**
 * A dispatch counter for tfjs's 'webgpu' backend: every GPU program the backend records is one
 * `dispatchWorkgroups` on its compute-pass encoder (`WebGPUBackend.recordAndSubmit`), so wrapping
 * that method of the backend instance counts the dispatches exactly, on any adapter (lavapipe gives
 * the same counts as a real GPU). Reshapes and other kernels that only move metadata dispatch nothing.
 * Needs no import of `@tensorflow/tfjs-backend-webgpu`: it works on whatever backend instance is
 * registered as 'webgpu'.
 */

/** What {@link countDispatches} measured. */
export interface DispatchCount<T> {
  result: T;
  /** GPU programs dispatched while `fn` ran. */
  dispatches: number;
  /** The same, by program class name (`constructor.name`, e.g. `MatMulPackedProgram`, ours `Vb*Program`). */
  byProgram: Record<string, number>;
}

interface RecordingBackend {
  recordAndSubmit: (program: { constructor: { name: string } }, ...rest: unknown[]) => unknown;
  __vbDispatchCounter?: Counter;
}

interface Counter {
  total: number;
  byProgram: Map<string, number>;
}

/** The 'webgpu' backend instance, or null where it is not registered or not initialised. */
function webgpuBackend(): RecordingBackend | null {
  if (!tf.findBackendFactory('webgpu')) return null;
  const b = tf.findBackend('webgpu') as unknown as RecordingBackend | null;
  return b && typeof b.recordAndSubmit === 'function' ? b : null;
}

/** Install the counting wrapper on the 'webgpu' backend instance (idempotent). Returns null where there is none. */
function counter(): Counter | null {
  const b = webgpuBackend();
  if (!b) return null;
  if (b.__vbDispatchCounter) return b.__vbDispatchCounter;
  const c: Counter = { total: 0, byProgram: new Map() };
  const inner = b.recordAndSubmit;
  b.recordAndSubmit = function (this: RecordingBackend, program, ...rest) {
    c.total++;
    const name = program?.constructor?.name ?? '?';
    c.byProgram.set(name, (c.byProgram.get(name) ?? 0) + 1);
    return inner.call(this, program, ...rest);
  };
  Object.defineProperty(b, '__vbDispatchCounter', { value: c, enumerable: false });
  return c;
}

/** Total GPU programs dispatched by the 'webgpu' backend since the counter was installed (installs it), or null without the backend. */
export function webgpuDispatches(): number | null {
  return counter()?.total ?? null;
}

/**
 * Run `fn` (synchronous, e.g. one forward pass) and count the GPU programs the 'webgpu' backend
 * dispatched meanwhile. Throws when the 'webgpu' backend is not initialised.
 */
export function countDispatches<T>(fn: () => T): DispatchCount<T> {
  const c = counter();
  if (!c) throw new Error("countDispatches: the 'webgpu' backend is not registered or not initialised (tf.setBackend('webgpu') first)");
  const total0 = c.total;
  const by0 = new Map(c.byProgram);
  const result = fn();
  const byProgram: Record<string, number> = {};
  for (const [k, v] of c.byProgram) {
    const d = v - (by0.get(k) ?? 0);
    if (d > 0) byProgram[k] = d;
  }
  return { result, dispatches: c.total - total0, byProgram };
}
