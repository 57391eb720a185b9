/**
 * Tasks: a backbone composed with necks, adapters and heads into one trainable model.
 * @module
 */
export * from './attach.js';
export * from './semaskSegmentor.js';
export * from './denseClipSegmentor.js';
export * from './zeroShot.js';
export * from './detector.js';
export * from './cocoEval.js';
export * from './lvAdapter.js';
