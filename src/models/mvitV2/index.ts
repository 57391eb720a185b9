export * from './config.js';
export * from './multiScaleBlock.js';
export * from './multiScaleVit.js';
import './variants.js';
