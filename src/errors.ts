/** The library's own error: every validation failure raises it (or a subclass) with a message naming the value and what was expected. */
export class VisBackbonesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VisBackbonesError';
  }
}

/** Throw a {@link VisBackbonesError} unless `cond` holds. */
export function check(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new VisBackbonesError(typeof message === 'string' ? message : message());
}
