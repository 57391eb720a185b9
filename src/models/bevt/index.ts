export * from './convTranspose3d.js';
export * from './maskResize.js';
export * from './bevtSwin.js';
