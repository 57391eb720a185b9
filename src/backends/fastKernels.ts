import * as tf from '@tensorflow/tfjs';
import { makeConv2dFilterGrad, makeDepthwiseConv2d, makeDepthwiseFilterGrad, makeDepthwiseInputGrad } from './convKernels.js';
import { makeGather, makeIdentity, makeSlice, makeSplitV, makeTranspose } from './copyKernels.js';
import { registerFusedGradients } from './fusedOps.js';
import { KernelArgs, KernelResult, precompileKernels } from './kernelModule.js';
import { makeBatchMatMul } from './matMulKernel.js';
import { geluGradKernel, layerNormKernel, makeUnary } from './pointwiseKernels.js';
import { makeSum } from './reduceKernels.js';

/**
 * Kernels of our own for the 'wasm' backend (see `native/assembly`), registered over tfjs-wasm's
 * by {@link registerFastKernels} (an explicit opt-in: nothing changes on import). Each one works in
 * place on the backend's heap and hands any case it does not cover (other dtypes, NCHW, channel
 * multipliers > 1, general batch broadcasting) to the kernel it replaced.
 *
 * - `BatchMatMul`: every float32 product, batched or not, any transposes (window attention's `q k^T`
 *   and `attn v`, every matmul gradient) by a SIMD GEMM (`matMulKernel.ts`).
 * - `Erf`: a SIMD polynomial erf (2.6 ulp), for every exact GELU (`pointwiseKernels.ts`).
 * - `DepthwiseConv2dNative` (channel multiplier 1, NHWC), and `Conv2DBackpropFilter`,
 *   `DepthwiseConv2dNativeBackpropFilter`, `DepthwiseConv2dNativeBackpropInput`, which tfjs-wasm lacks
 *   (`convKernels.ts`).
 * - `Slice`, `SplitV`, `Transpose` (4-byte dtypes): strided copies on the heap (`copyKernels.ts`);
 *   `GatherV2` (batchDims 0) as row copies; `Identity` shares its input's data instead of copying it.
 * - `Sum` (float32) over one block of axes, in float64, without tfjs-wasm's transpose (`reduceKernels.ts`).
 * - `VisBackbonesGelu`, `VisBackbonesGeluGrad`, `VisBackbonesLayerNorm`: fused single-pass kernels
 *   that `gelu` and `LayerNorm` (src/layers) use when present (see `fusedOps.ts`).
 */

/** Names of the custom kernels registered for 'wasm' only. */
export const GELU_KERNEL = 'VisBackbonesGelu';
export const LAYER_NORM_KERNEL = 'VisBackbonesLayerNorm';
export const GELU_GRAD_KERNEL = 'VisBackbonesGeluGrad';

/** The kernels {@link registerFastKernels} installs. */
export const FAST_KERNEL_NAMES = [
  'BatchMatMul',
  'Erf',
  'DepthwiseConv2dNative',
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'Slice',
  'SplitV',
  'Transpose',
  'Identity',
  'GatherV2',
  'Sum',
  GELU_KERNEL,
  GELU_GRAD_KERNEL,
  LAYER_NORM_KERNEL,
] as const;
/** Name of a kernel that {@link registerFastKernels} can replace. */
export type FastKernelName = (typeof FAST_KERNEL_NAMES)[number];

const replaced = new Map<string, tf.KernelConfig | undefined>();

/** Run the kernel ours replaced (tfjs-wasm's, or a JS fallback registered earlier). */
function previous(name: string, args: KernelArgs): KernelResult {
  const k = replaced.get(name);
  if (!k) throw new Error(`'${name}' is not supported on the wasm backend for these arguments (${describe(args)})`);
  return k.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
}

function describe(args: KernelArgs): string {
  return Object.entries(args.inputs)
    .map(([k, t]) => `${k}: ${t ? `${(t as tf.TensorInfo).dtype}[${(t as tf.TensorInfo).shape.join(',')}]` : 'null'}`)
    .join(', ');
}

const KERNEL_FUNCS: Record<FastKernelName, (args: KernelArgs) => KernelResult> = {
  BatchMatMul: makeBatchMatMul((args) => previous('BatchMatMul', args)),
  Erf: makeUnary('erf', (args) => previous('Erf', args)),
  DepthwiseConv2dNative: makeDepthwiseConv2d((args) => previous('DepthwiseConv2dNative', args)),
  Conv2DBackpropFilter: makeConv2dFilterGrad((args) => previous('Conv2DBackpropFilter', args)),
  DepthwiseConv2dNativeBackpropFilter: makeDepthwiseFilterGrad((args) => previous('DepthwiseConv2dNativeBackpropFilter', args)),
  DepthwiseConv2dNativeBackpropInput: makeDepthwiseInputGrad((args) => previous('DepthwiseConv2dNativeBackpropInput', args)),
  Slice: makeSlice((args) => previous('Slice', args)),
  SplitV: makeSplitV((args) => previous('SplitV', args)),
  Transpose: makeTranspose((args) => previous('Transpose', args)),
  Identity: makeIdentity(),
  GatherV2: makeGather((args) => previous('GatherV2', args)),
  Sum: makeSum((args) => previous('Sum', args)),
  [GELU_KERNEL]: makeUnary('gelu', (args) => previous(GELU_KERNEL, args)),
  [GELU_GRAD_KERNEL]: geluGradKernel,
  [LAYER_NORM_KERNEL]: layerNormKernel,
};

/** Options of {@link registerFastKernels}. */
export interface FastKernelOptions {
  /** Register only these (default: all of {@link FAST_KERNEL_NAMES}). */
  kernels?: readonly FastKernelName[];
}

/**
 * Register our wasm kernels over tfjs-wasm's (for the 'wasm' backend only; other backends are
 * untouched). Idempotent. Await it before the first kernel runs in a browser (it compiles the module
 * asynchronously there); in Node the module is also compiled on first use.
 */
export async function registerFastKernels(opts: FastKernelOptions = {}): Promise<void> {
  await precompileKernels();
  registerFusedGradients();
  for (const name of opts.kernels ?? FAST_KERNEL_NAMES) {
    if (replaced.has(name)) continue;
    const prev = tf.getKernel(name, 'wasm');
    replaced.set(name, prev);
    if (prev) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: KERNEL_FUNCS[name] as unknown as tf.KernelFunc,
      setupFunc: prev?.setupFunc,
      disposeFunc: prev?.disposeFunc,
    });
  }
}

/** Put back the kernels {@link registerFastKernels} replaced (and remove the ones it added). */
export function unregisterFastKernels(): void {
  for (const [name, prev] of replaced) {
    tf.unregisterKernel(name, 'wasm');
    if (prev) tf.registerKernel(prev);
  }
  replaced.clear();
}

/** Whether our kernel `name` is registered now. */
export function fastKernelRegistered(name: FastKernelName): boolean {
  return replaced.has(name);
}
