import * as tf from '@tensorflow/tfjs';
import { registerConvBackpropKernels } from './convBackprop.js';
// out of memory as an error: installed with the kernels, so every path into the wasm backend has it
import './wasmMemoryGuard.js';

/**
 * Kernels that tfjs-wasm 4.22 lacks but that training needs, registered for the 'wasm' backend only
 * (nothing changes on other backends, and nothing is registered if tfjs already has the kernel).
 * They read their inputs from the backend and compute in JavaScript: correct everywhere, and fast
 * enough for the small tensors they see (the gradients of table lookups).
 */
interface WasmLikeBackend {
  readSync(dataId: unknown): tf.TypedArray;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

function unsortedSegmentSum({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const b = backend as WasmLikeBackend;
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const xv = b.readSync(x.dataId) as Float32Array;
  const ids = b.readSync(segmentIds.dataId) as Int32Array;
  const inner = x.shape.slice(segmentIds.shape.length).reduce((a, c) => a * c, 1);
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const out = b.makeOutput(outShape, x.dtype);
  const ov = b.typedArrayFromHeap(out) as Float32Array;
  ov.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) ov[dst + j] += xv[src + j];
  }
  return out;
}

let registered = false;
/** Register the missing wasm kernels (idempotent; called on import of the package). */
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const add = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  };
  add('UnsortedSegmentSum', unsortedSegmentSum as unknown as tf.KernelFunc);
  registerConvBackpropKernels();
}

registerWasmKernels();
