/**
 * Visualisation: PNG encoding, image grids and colour maps, PCA of feature maps to RGB, line charts.
 * @module
 */
export * from './png.js';
export * from './imageGrid.js';
export * from './pca.js';
export * from './text.js';
export * from './lineChart.js';
