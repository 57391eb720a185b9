export * from './common.js';
export * from './retinaNet.js';
export * from './fcos.js';
export * from './rpn.js';
export * from './roiHeads.js';
export * from './maskRcnn.js';
export * from './variants.js';
