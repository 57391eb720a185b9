import { expect } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';

/** The error `fn` throws (fails the test when it throws nothing). */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

/** Asserts that `fn` throws a `VisBackbonesError` whose message matches `re`. */
export function expectError(fn: () => unknown, re: RegExp): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected an error matching ${re}`).toBeInstanceOf(VisBackbonesError);
  expect((err as Error).message).toMatch(re);
}
