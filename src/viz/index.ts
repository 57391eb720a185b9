/**
 * Visualisation: PNG encoding, image grids and colour maps, PCA of feature maps to RGB, and the
 * attention maps of a Swin window-attention block.
 * @module
 */
export * from './png.js';
export * from './imageGrid.js';
export * from './pca.js';
export * from './windowAttentionMaps.js';
