export * from './vitDetBlock.js';
export * from './visionTransformerSam.js';
import './variants.js';
