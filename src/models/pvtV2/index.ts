export * from './pvtV2Stage.js';
export * from './pyramidVisionTransformerV2.js';
import './variants.js';
