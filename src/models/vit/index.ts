export * from './visionTransformer.js';
import './variants.js';
