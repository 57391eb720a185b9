export * from './config.js';
export * from './pvtBlock.js';
export * from './pyramidVisionTransformer.js';
import './variants.js';
