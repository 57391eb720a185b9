export * from './swinBlock.js';
export * from './swinTransformer.js';
import './variants.js';
export * from './windowAttentionMaps.js';
