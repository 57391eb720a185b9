export * from './multimodalDecoder.js';
export * from './coca.js';
export * from './generate.js';
export * from './cocaLoss.js';
