export * from './config.js';
export * from './cswinBlock.js';
export * from './cswinTransformer.js';
import './variants.js';
