import * as tf from '@tensorflow/tfjs';
import { makeConv2dFilterGrad, makeDepthwiseConv2d, makeDepthwiseFilterGrad, makeDepthwiseInputGrad } from './convKernels.js';
import { makeBinary, makeSquare, makeUnaryActivation } from './binaryKernels.js';
import { makeGather, makeIdentity, makeSlice, makeSplitV, makeTranspose } from './copyKernels.js';
import {
  GELU_GRAD_KERNEL,
  GELU_KERNEL,
  LAYER_NORM_GRAD_W_KERNEL,
  LAYER_NORM_GRAD_X_KERNEL,
  LAYER_NORM_KERNEL,
  registerFusedGradients,
} from './fusedOps.js';
import { KernelArgs, KernelResult, compileKernels, kernelsCompiled } from './kernelModule.js';
import { BIAS_MASK_SOFTMAX_KERNEL, SOFTMAX_GRAD_KERNEL } from './fusedSoftmax.js';
import { GRN_KERNEL } from './fusedAttention.js';
import { makeBatchMatMul, makeFusedMatMul } from './matMulKernel.js';
import { geluGradKernel, grnKernel, layerNormGradWKernel, layerNormGradXKernel, layerNormKernel, makeUnary } from './pointwiseKernels.js';
import { makeSum } from './reduceKernels.js';
import { biasMaskSoftmaxKernel, makeSoftmax, softmaxGradKernel } from './softmaxKernels.js';
// first: the JavaScript kernels tfjs-wasm lacks for training, so that ours wrap them (and unregistering ours puts them back)
import './wasmKernels.js';

/**
 * Kernels of our own for the 'wasm' backend (see `native/assembly`), registered over tfjs-wasm's when
 * this module loads (importing the package), for 'wasm' only: cpu, webgl and webgpu are untouched.
 * {@link unregisterFastKernels} puts tfjs-wasm's back; {@link registerFastKernels} registers ours again.
 * Each one works in place on the backend's heap and hands any case it does not cover (other dtypes,
 * NCHW, channel multipliers > 1, general batch broadcasting) to the kernel it replaced.
 *
 * Loading: in Node the kernel module is compiled synchronously on import, so ours run from the first
 * op. Browsers refuse synchronous compilation on the main thread, so there it compiles
 * asynchronously from import on; until it is ready each of ours runs the kernel it replaced (the
 * fused GELU / LayerNorm kernels, which replace none, are registered once it is ready): await
 * {@link fastKernelsReady} (or `useWasm()`) to have ours from the first op. Import order: if
 * `@tensorflow/tfjs-backend-wasm` is imported after this package, its own registration comes later,
 * so ours are installed when the wasm backend becomes active (`tf.setBackend('wasm')` / `tf.ready()`,
 * through a kernel setup hook) rather than on import; tfjs never warns about a kernel registered twice.
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
 * - `VisBackbonesGelu`, `VisBackbonesGeluGrad`, `VisBackbonesLayerNorm`, `VisBackbonesLayerNormGradX`,
 *   `VisBackbonesLayerNormGradW`: fused single-pass kernels that `gelu` and `LayerNorm` (src/layers) and
 *   their gradients use when present (see `fusedOps.ts`); `VisBackbonesGrn`, ConvNeXt
 *   V2's global response norm in two passes, for inference (`fusedGrn` in `fusedAttention.ts`).
 * - `Softmax` (float32, last axis), and `VisBackbonesBiasMaskSoftmax` / `VisBackbonesSoftmaxGrad`:
 *   window attention's `softmax(logits + bias + mask)` in one pass and its gradient (`softmaxKernels.ts`,
 *   used by `biasMaskSoftmax` in src/layers/attention.ts through `fusedSoftmax.ts`).
 * - `_FusedMatMul` (`tf.fused.matMul`, linear activation, one bias row): our GEMM with the bias added
 *   as the tiles are stored (`matMulKernel.ts`), for `Linear`.
 * - `Add`, `Sub`, `Multiply`, `RealDiv`, `Maximum`, `Minimum`, `Square` (float32, broadcasts that merge
 *   into three axis groups): the same values as tfjs-wasm's, split across threads; `Relu`, `Sigmoid`
 *   (`binaryKernels.ts`). The threaded tfjs-wasm binary runs its elementwise ops several times slower.
 */

/** Names of the custom kernels registered for 'wasm' only (defined where the fused ops call them). */
export { GELU_KERNEL, GELU_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_GRAD_X_KERNEL, LAYER_NORM_GRAD_W_KERNEL };

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
  LAYER_NORM_GRAD_X_KERNEL,
  LAYER_NORM_GRAD_W_KERNEL,
  GRN_KERNEL,
  'Softmax',
  '_FusedMatMul',
  BIAS_MASK_SOFTMAX_KERNEL,
  SOFTMAX_GRAD_KERNEL,
  'Add',
  'Sub',
  'Multiply',
  'RealDiv',
  'Maximum',
  'Minimum',
  'Square',
  'Relu',
  'Sigmoid',
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
  [LAYER_NORM_GRAD_X_KERNEL]: layerNormGradXKernel,
  [LAYER_NORM_GRAD_W_KERNEL]: layerNormGradWKernel,
  [GRN_KERNEL]: grnKernel,
  Softmax: makeSoftmax((args) => previous('Softmax', args)),
  _FusedMatMul: makeFusedMatMul((args) => previous('_FusedMatMul', args)),
  [BIAS_MASK_SOFTMAX_KERNEL]: biasMaskSoftmaxKernel,
  [SOFTMAX_GRAD_KERNEL]: softmaxGradKernel,
  Add: makeBinary('Add', (args) => previous('Add', args)),
  Sub: makeBinary('Sub', (args) => previous('Sub', args)),
  Multiply: makeBinary('Multiply', (args) => previous('Multiply', args)),
  RealDiv: makeBinary('RealDiv', (args) => previous('RealDiv', args)),
  Maximum: makeBinary('Maximum', (args) => previous('Maximum', args)),
  Minimum: makeBinary('Minimum', (args) => previous('Minimum', args)),
  Square: makeSquare((args) => previous('Square', args)),
  Relu: makeUnaryActivation('Relu', (args) => previous('Relu', args)),
  Sigmoid: makeUnaryActivation('Sigmoid', (args) => previous('Sigmoid', args)),
};

/** Options of {@link registerFastKernels}. */
export interface FastKernelOptions {
  /** Register these (default: all of {@link FAST_KERNEL_NAMES}); others registered stay registered. */
  kernels?: readonly FastKernelName[];
}

/** The kernels that should be ours: all on import; {@link unregisterFastKernels} empties it. */
const wanted = new Set<FastKernelName>();

/** A kernel registered for 'wasm' only for its setup function, which tfjs calls whenever the wasm backend becomes active. */
const SETUP_HOOK = 'VisBackbonesFastKernelsSetup';

/**
 * Register ours over the current kernel for every wanted name that is not ours. Nothing while
 * tfjs-wasm is not loaded (it would overwrite ours on import, warning; the setup hook installs them
 * when the backend starts); a kernel that replaces none only once the module is compiled.
 */
function install(): void {
  if (wanted.size === 0 || !tf.findBackendFactory('wasm')) return;
  for (const name of wanted) {
    const current = tf.getKernel(name, 'wasm');
    if (current?.kernelFunc === (KERNEL_FUNCS[name] as unknown)) continue;
    if (!current && !kernelsCompiled()) continue;
    replaced.set(name, current);
    if (current) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: KERNEL_FUNCS[name] as unknown as tf.KernelFunc,
      setupFunc: current?.setupFunc,
      disposeFunc: current?.disposeFunc,
    });
  }
}

function hookBackendSetup(): void {
  if (tf.getKernel(SETUP_HOOK, 'wasm')) return;
  tf.registerKernel({
    kernelName: SETUP_HOOK,
    backendName: 'wasm',
    kernelFunc: () => {
      throw new Error(`${SETUP_HOOK} is a setup hook, not a kernel to run`);
    },
    setupFunc: () => install(),
  });
}

/**
 * Register our wasm kernels over tfjs-wasm's (for the 'wasm' backend only; other backends are
 * untouched). Done on import: call it to register them again after {@link unregisterFastKernels}.
 * Idempotent. Registers synchronously (in Node, ours run from the next op); the promise resolves
 * when the module is compiled and all are registered (see {@link fastKernelsReady}).
 */
export function registerFastKernels(opts: FastKernelOptions = {}): Promise<void> {
  for (const name of opts.kernels ?? FAST_KERNEL_NAMES) wanted.add(name);
  registerFusedGradients();
  hookBackendSetup();
  const compiled = compileKernels();
  install();
  return compiled.then(install);
}

/**
 * Resolves when our kernels are ready: at once in Node; in a browser once the asynchronous compile
 * started on import is done (until then each of ours runs the kernel it replaced). Rejects, saying
 * why, if the module cannot be compiled (a runtime without WebAssembly SIMD): tfjs-wasm's kernels
 * then stay in use.
 */
export function fastKernelsReady(): Promise<void> {
  return compileKernels().then(install);
}

/**
 * Put back the kernels ours replaced (tfjs-wasm's, and the package's JavaScript training kernels)
 * and remove the ones that replaced none: the opt-out of the registration done on import. It lasts
 * until {@link registerFastKernels} is called again.
 */
export function unregisterFastKernels(): void {
  wanted.clear();
  for (const [name, prev] of replaced) {
    if (tf.getKernel(name, 'wasm')?.kernelFunc !== (KERNEL_FUNCS[name as FastKernelName] as unknown)) continue;
    tf.unregisterKernel(name, 'wasm');
    if (prev) tf.registerKernel(prev);
  }
  replaced.clear();
}

/** Whether our kernel `name` is the one registered for 'wasm' now. */
export function fastKernelRegistered(name: FastKernelName): boolean {
  return tf.getKernel(name, 'wasm')?.kernelFunc === (KERNEL_FUNCS[name] as unknown);
}

// on import: ours by default (a failure to compile is reported by fastKernelsReady)
registerFastKernels().catch(() => {});
