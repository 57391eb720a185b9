export * from './config.js';
export * from './evaAttention.js';
export * from './evaBlock.js';
export * from './checkpointFilter.js';
export * from './eva.js';
import './variants.js';
