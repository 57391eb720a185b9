/**
 * Data preparation as timm does it: pretrained cfgs and tags, data configs, the eval (and training)
 * transforms, image decoding and ImageNet labels.
 * @module
 */
export * from './pretrainedCfgs.js';
export * from './dataConfig.js';
export * from './pilResize.js';
export * from './imageOps.js';
export * from './evalTransform.js';
export * from './transforms.js';
export * from './readImage.js';
export * from './labels.js';
export * from './trainTransform.js';
export * from './batchTransform.js';
export * from './randAugment.js';
export * from './mixup.js';
export { DataRng } from './rng.js';
export * from './imageFolder.js';
export * from './decodePool.js';
