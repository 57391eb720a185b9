/**
 * visbackbones: modern vision backbones, dense heads and masked-image-modeling pretraining for
 * TensorFlow.js, numerically matching timm and the official reference code.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './layers/index.js';
export * from './heads/index.js';
export * from './transfer/index.js';
export * from './tasks/index.js';
export * from './train/index.js';
export * from './models/backbone.js';
export * from './models/registry.js';
export * from './models/groupMatcher.js';
export * from './models/swin/index.js';
export * from './models/vit/index.js';
export * from './models/vitDet/index.js';
export * from './models/cswin/index.js';
export * from './models/convnextV2/index.js';
export * from './models/pvtV2/index.js';
export * from './models/mvitV2/index.js';
export * from './models/clip/index.js';
export * from './models/videoSwin/index.js';
export * from './models/pvt/index.js';
export * from './models/semaskSwin/index.js';
export * from './models/eva/index.js';
export * from './models/beit3/index.js';
export * from './models/denseclip/index.js';
export * from './weights/safetensors.js';
export * from './weights/loadTimmWeights.js';
export * from './weights/saveSafetensors.js';
export * from './backends/wasmKernels.js';
export * from './backends/convBackprop.js';
export { enableWasmThreads, useWasm, wasmThreads } from './backends/wasmThreads.js';
export type { UseWasmOptions } from './backends/wasmThreads.js';
export { WasmOutOfMemoryError, WASM_HEAP_MAX_BYTES } from './backends/wasmMemoryGuard.js';
export { setFreeingTape } from './backends/freeingTape.js';
export { kernelSimd, relaxedSimdSupported, setKernelSimd } from './backends/kernelModule.js';
export type { KernelSimd } from './backends/kernelModule.js';
export {
  registerFastKernels,
  unregisterFastKernels,
  fastKernelRegistered,
  fastKernelsReady,
  FAST_KERNEL_NAMES,
} from './backends/fastKernels.js';
export type { FastKernelName, FastKernelOptions } from './backends/fastKernels.js';
export * from './utils/flops.js';
export * from './utils/pinv.js';
export * from './adapter/layersAdapter.js';
export * from './weights/tfjsFormat.js';
export * from './pretrain/index.js';
export * from './data/syntheticShapes.js';
export * from './data/syntheticDetection.js';
export * from './data/index.js';
export * from './hub/index.js';
export * from './tasks/classify.js';
export * from './data/syntheticVideo.js';
export * from './viz/index.js';
export * from './utils/random.js';
