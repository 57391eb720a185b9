/**
 * Stand-in for the `vitest` import of test/helpers/fixtures.ts when gpu/build.mjs bundles those
 * helpers into the WebGPU check (which runs with plain Node, without vitest). Only the
 * `expect(actual, message).toBe(expected)` form the helper uses is provided; it throws on mismatch.
 */
export function expect(actual: unknown, message?: string): { toBe(expected: unknown): void } {
  return {
    toBe(expected: unknown): void {
      if (!Object.is(actual, expected)) throw new Error(`${message ?? 'expect'}: ${String(actual)} is not ${String(expected)}`);
    },
  };
}
