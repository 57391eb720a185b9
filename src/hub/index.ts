/**
 * Pretrained weights: hub sources, the Hugging Face cache (shared with Python), downloads with
 * progress, `createModel(name, { pretrained: true })`, checkpoint folders.
 * @module
 */
export * from './pretrainedSource.js';
export * from './download.js';
export * from './progress.js';
export * from './createPretrained.js';
export * from './checkpoint.js';

import { registerPretrainedLoader } from '../models/registry.js';
import { createPretrainedModel } from './createPretrained.js';
// createModel(name, { pretrained: true }) goes through this folder's download and cache
registerPretrainedLoader((name, opts) => createPretrainedModel(name, opts));
