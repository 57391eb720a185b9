// @ts-nocheck -- AssemblyScript, compiled by `asc` (see ../build.mjs), not by tsc.
/**
 * Entry of the kernel module. Every kernel works on byte offsets into the tfjs-wasm backend's memory
 * (imported as `env.memory`) and takes a sub-range of its outer loop, so a caller can split the work
 * across threads that share that memory.
 */
export { bmm } from './gemm';
export { erf, gelu, geluGrad } from './pointwise';
export { reduceSum } from './reduce';
export { layerNorm, layerNormGradW, layerNormGradX } from './rowNorm';
export { biasMaskSoftmax, softmaxGrad } from './softmax';
export { binary, unary } from './binary';
export { depthwiseConv, depthwiseFilterGrad, depthwiseInputGrad } from './depthwise';
export { convFilterGrad } from './convFilterGrad';
export { transpose2d } from './transpose';
export { gatherRows, gatherRuns } from './gatherRuns';
export { grn } from './grn';
