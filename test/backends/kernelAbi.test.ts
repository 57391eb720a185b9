import { describe, expect, it } from 'vitest';
import { KERNEL_NAMES } from '../../src/backends/kernelAbi.js';
import { KERNELS_SHARED_WASM, KERNELS_WASM } from '../../src/backends/native/kernelsWasm.js';

/**
 * The kernel list the main thread and the worker pool share is exactly the set of functions the
 * compiled module exports, in both variants (a kernel missing from the list would fail only on a
 * worker thread, under threaded wasm).
 */
function exportedFunctions(base64: string): string[] {
  const mod = new WebAssembly.Module(Buffer.from(base64, 'base64'));
  return WebAssembly.Module.exports(mod)
    .filter((e) => e.kind === 'function')
    .map((e) => e.name);
}

describe('kernel module interface', () => {
  it('KERNEL_NAMES has no duplicates', () => {
    expect(new Set(KERNEL_NAMES).size).toBe(KERNEL_NAMES.length);
  });

  for (const [variant, bin] of [
    ['single-memory', KERNELS_WASM],
    ['shared-memory', KERNELS_SHARED_WASM],
  ] as const) {
    it(`KERNEL_NAMES equals the exported functions of the ${variant} module`, () => {
      expect([...KERNEL_NAMES].sort()).toEqual(exportedFunctions(bin).sort());
    });
  }
});
