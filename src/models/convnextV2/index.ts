export * from './config.js';
export * from './checkpointFilter.js';
export * from './convnext.js';
import './variants.js';
