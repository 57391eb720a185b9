export * from './groupMatcher.js';
export * from './freeze.js';
export * from './adapter.js';
export * from './lrDecay.js';
