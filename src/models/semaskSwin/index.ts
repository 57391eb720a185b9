export * from './config.js';
export * from './semanticAttention.js';
export * from './semaskSwinBlock.js';
export * from './semaskStage.js';
export * from './semaskSwinTransformer.js';
import './variants.js';
