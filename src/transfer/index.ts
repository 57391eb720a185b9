export * from './freeze.js';
export * from './adapter.js';
