import * as tf from '@tensorflow/tfjs';
import { ATTENTION_CORE_KERNEL, DW_CONV_LAYER_NORM_KERNEL, GRN_KERNEL } from '../fusedAttention.js';
import { registerFusedWindowGradients, WINDOW_PARTITION_KERNEL, WINDOW_REVERSE_KERNEL } from '../fusedWindows.js';
import { BIAS_MASK_SOFTMAX_KERNEL } from '../fusedSoftmax.js';
import {
  LINEAR_GELU_KERNEL,
  LINEAR_RESIDUAL_KERNEL,
  SCALED_RESIDUAL_KERNEL,
  LAYER_NORM_RESIDUAL_KERNEL,
  registerFusedLinearGradients,
} from '../fusedLinear.js';
import { registerFusedGradients } from '../fusedOps.js';
import {
  attentionCoreProgram,
  biasMaskSoftmaxProgram,
  dwConvLayerNormProgram,
  grnApplyProgram,
  grnNormProgram,
  windowCopyProgram,
  GELU_WGSL,
  geluProgram,
  layerNormProgram,
  scaledResidualProgram,
  VbProgram,
} from './programs.js';

/**
 * Kernels of our own for tfjs's 'webgpu' backend (WGSL, `programs.ts`), registered for 'webgpu' only
 * and only on request: {@link registerWebgpuKernels}. They take the same seams as the wasm kernels:
 * the layers ask for a fused kernel by name (`fusedOps.ts`, `fusedSoftmax.ts`, `fusedLinear.ts`) and
 * compute the composed formula where the active backend has none, so cpu, wasm and the other
 * backends are untouched, and so is webgpu until registration. Nothing here imports
 * `@tensorflow/tfjs-backend-webgpu` (a devDependency): the backend instance is reached through the
 * kernel's `backend` argument, so this module is safe in every bundle.
 *
 * - `VisBackbonesLayerNorm`: LayerNorm over the last axis (also LayerNorm2d on NHWC) in one dispatch.
 * - `VisBackbonesLayerNormResidual`: `r + LayerNorm(x)` in one dispatch (Swin V2's post-norm residual).
 * - `VisBackbonesGelu`: exact GELU (erfc to 1.2e-7) in one dispatch instead of five.
 * - `VisBackbonesLinearGelu`: `gelu(x W + b)` as tfjs's own tiled matmul with our GELU epilogue (the
 *   backend's `_FusedMatMul` program with its activation function replaced), one dispatch.
 * - `VisBackbonesBiasMaskSoftmax`: window attention's `softmax(logits + bias + mask)` in one dispatch.
 * - `VisBackbonesScaledResidual`: `x + gamma * y` (residual + layer scale) in one dispatch.
 * - `VisBackbonesAttentionCore`: `softmax(s q k^T + bias + mask) v` per query row in one dispatch
 *   (plain or SwinV2's cosine attention with its logit scale), for inference (`fusedAttention.ts`).
 * - `VisBackbonesWindowPartition` / `VisBackbonesWindowReverse`: Swin's cyclic shift and window
 *   partition (merge and shift back) as one copy each (`fusedWindows.ts`).
 * - `VisBackbonesGrn`: ConvNeXt V2's global response norm (NHWC) in two dispatches instead of ~10, for inference.
 * - `VisBackbonesDwConvLayerNorm`: ConvNeXt's depthwise conv + bias + LayerNorm (NHWC) in one dispatch
 *   instead of four (pad, conv, bias add, norm), for inference.
 * - `VisBackbonesLinearResidual`: `x W + b + r` as tfjs's tiled matmul with the residual added in its
 *   epilogue (the `_FusedMatMul` 'prelu' epilogue, whose weights are the residual, turned into an add),
 *   one dispatch instead of two.
 */

/** Names of the kernels {@link registerWebgpuKernels} registers for 'webgpu'. */
export const WEBGPU_KERNEL_NAMES = [
  'VisBackbonesLayerNorm',
  LAYER_NORM_RESIDUAL_KERNEL,
  'VisBackbonesGelu',
  LINEAR_GELU_KERNEL,
  BIAS_MASK_SOFTMAX_KERNEL,
  SCALED_RESIDUAL_KERNEL,
  ATTENTION_CORE_KERNEL,
  WINDOW_PARTITION_KERNEL,
  WINDOW_REVERSE_KERNEL,
  GRN_KERNEL,
  DW_CONV_LAYER_NORM_KERNEL,
  LINEAR_RESIDUAL_KERNEL,
] as const;
/** Name of one of our webgpu kernels. */
export type WebgpuKernelName = (typeof WEBGPU_KERNEL_NAMES)[number];

/** The webgpu backend's methods that ours use (duck-typed: no import of the package). */
interface WebGPULikeBackend {
  runWebGPUProgram(
    program: VbProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: Array<{ type: 'int32' | 'float32' | 'uint32'; data: number[] }>,
  ): tf.TensorInfo;
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Run `program` and give the result the shape `shape` (our programs write flat buffers). */
function run(
  backend: unknown,
  program: VbProgram,
  inputs: tf.TensorInfo[],
  shape: number[],
  uniforms?: Array<{ type: 'int32' | 'float32'; data: number[] }>,
): tf.TensorInfo {
  const out = (backend as WebGPULikeBackend).runWebGPUProgram(program, inputs, 'float32', uniforms);
  out.shape = shape; // same size, row-major: no copy
  return out;
}

function layerNorm({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, weight, bias, residual } = inputs as Record<string, tf.TensorInfo | undefined>;
  const eps = (attrs as { eps: number }).eps;
  const cols = x!.shape[x!.shape.length - 1];
  const rows = size(x!.shape) / cols;
  const ins = [x!, weight!, bias!];
  if (residual) ins.push(residual);
  return run(
    backend,
    layerNormProgram(rows, cols, !!residual),
    ins,
    [...x!.shape],
    [
      { type: 'int32', data: [rows] },
      { type: 'int32', data: [cols] },
      { type: 'float32', data: [eps] },
    ],
  );
}

function gelu({ inputs, backend }: Args): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  return run(backend, geluProgram(size(x.shape)), [x], [...x.shape]);
}

function biasMaskSoftmax({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, bias, mask } = inputs as Record<string, tf.TensorInfo | undefined>;
  const { heads, windows } = attrs as { heads: number; windows: number };
  const [g, n, m] = x!.shape;
  const ins = [x!];
  if (bias) ins.push(bias);
  if (mask) ins.push(mask);
  return run(
    backend,
    biasMaskSoftmaxProgram(g, n, m, { bias: !!bias, mask: !!mask }),
    ins,
    [g, n, m],
    [
      { type: 'int32', data: [g * n] },
      { type: 'int32', data: [n] },
      { type: 'int32', data: [m] },
      { type: 'int32', data: [heads] },
      { type: 'int32', data: [windows] },
    ],
  );
}

function scaledResidual({ inputs, backend }: Args): tf.TensorInfo {
  const { x, y, gamma } = inputs as Record<string, tf.TensorInfo>;
  return run(backend, scaledResidualProgram(size(x.shape)), [x, y, gamma], [...x.shape], [{ type: 'int32', data: [gamma.shape[0]] }]);
}

function attentionCore({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { q, k, v, qkv, logitScale, bias, mask } = inputs as Record<string, tf.TensorInfo | undefined>;
  const a = attrs as { heads: number; windows: number; cosine: boolean; scale: number; packed?: boolean; batch?: number; tokens?: number };
  const { heads, windows, cosine, scale } = a;
  const packed = a.packed === true;
  // packed: qkv [B * N, 3 * heads * hd] in, [B, N, heads * hd] out; else q, k, v [G, N, hd] in, [G, N, hd] out
  const hd = packed ? qkv!.shape[qkv!.shape.length - 1] / (3 * heads) : q!.shape[2];
  const g = packed ? a.batch! * heads : q!.shape[0];
  const n = packed ? a.tokens! : q!.shape[1];
  const m = packed ? n : k!.shape[1];
  const ins = packed ? [qkv!] : [q!, k!, v!];
  if (cosine) ins.push(logitScale!);
  if (bias) ins.push(bias);
  if (mask) ins.push(mask);
  const outShape = packed ? [a.batch!, n, heads * hd] : [g, n, hd];
  return run(backend, attentionCoreProgram(g, n, m, hd, { bias: !!bias, mask: !!mask, cosine, packed }), ins, outShape, [
    { type: 'int32', data: [g * n] },
    { type: 'int32', data: [n] },
    { type: 'int32', data: [m] },
    { type: 'int32', data: [hd] },
    { type: 'int32', data: [heads] },
    { type: 'int32', data: [windows] },
    { type: 'float32', data: [scale] },
  ]);
}

function windowCopy(reverse: boolean) {
  return ({ inputs, backend, attrs }: Args): tf.TensorInfo => {
    const x = inputs.x as tf.TensorInfo;
    const a = attrs as { wh: number; ww: number; sh: number; sw: number; h?: number; w?: number };
    const c = x.shape[x.shape.length - 1];
    const [h, w] = reverse ? [a.h!, a.w!] : [x.shape[1], x.shape[2]];
    const total = size(x.shape);
    const shape = reverse ? [total / (h * w * c), h, w, c] : [total / (a.wh * a.ww * c), a.wh * a.ww, c];
    const comp = c % 4 === 0 ? 4 : 1;
    return run(backend, windowCopyProgram(total, c, reverse), [x], shape, [
      { type: 'int32', data: [c / comp] },
      { type: 'int32', data: [h] },
      { type: 'int32', data: [w] },
      { type: 'int32', data: [a.wh] },
      { type: 'int32', data: [a.ww] },
      { type: 'int32', data: [a.sh] },
      { type: 'int32', data: [a.sw] },
    ]);
  };
}

function grn({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, weight, bias } = inputs as Record<string, tf.TensorInfo>;
  const eps = (attrs as { eps: number }).eps;
  const [b, h, w, c] = x.shape;
  const hw = h * w;
  const gx = (backend as WebGPULikeBackend).runWebGPUProgram(grnNormProgram(b, c), [x], 'float32', [
    { type: 'int32', data: [b * c] },
    { type: 'int32', data: [hw] },
    { type: 'int32', data: [c] },
  ]);
  const p = grnApplyProgram(b, hw, c);
  const out = run(
    backend,
    p,
    [x, gx, weight, bias],
    [b, h, w, c],
    [
      { type: 'int32', data: [b] },
      { type: 'int32', data: [hw] },
      { type: 'int32', data: [c] },
      { type: 'int32', data: [Math.ceil((hw * c) / 64)] },
      { type: 'float32', data: [eps] },
    ],
  );
  (backend as unknown as { disposeData(id: unknown): void }).disposeData(gx.dataId);
  return out;
}

function dwConvLayerNorm({ inputs, backend, attrs }: Args): tf.TensorInfo {
  const { x, weight, bias, lnWeight, lnBias } = inputs as Record<string, tf.TensorInfo | undefined>;
  const { stride, dilation, padding, eps } = attrs as { stride: number; dilation: number; padding: number; eps: number };
  const [b, h, w, c] = x!.shape;
  const k = weight!.shape[0];
  const out = (n: number) => Math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
  const [ho, wo] = [out(h), out(w)];
  if (ho < 1 || wo < 1) throw new Error(`${DW_CONV_LAYER_NORM_KERNEL}: input ${h}x${w} is too small for kernel ${k} (padding ${padding})`);
  const rows = b * ho * wo;
  const ins = [x!, weight!];
  if (bias) ins.push(bias);
  ins.push(lnWeight!, lnBias!);
  return run(
    backend,
    dwConvLayerNormProgram(rows, c, !!bias),
    ins,
    [b, ho, wo, c],
    [
      { type: 'int32', data: [rows] },
      { type: 'int32', data: [c] },
      { type: 'int32', data: [h] },
      { type: 'int32', data: [w] },
      { type: 'int32', data: [ho] },
      { type: 'int32', data: [wo] },
      { type: 'int32', data: [k] },
      { type: 'int32', data: [stride] },
      { type: 'int32', data: [dilation] },
      { type: 'int32', data: [padding] },
      { type: 'float32', data: [eps] },
    ],
  );
}

/** tfjs-webgpu's activation snippets for 'relu' (scalar and vec4), which {@link linearGelu} replaces by GELU. */
const RELU_SNIPPETS: Array<[RegExp, string]> = [
  [/return select\(a, vec4<f32>\(0\.0\), a < vec4<f32>\(0\.0\)\);/g, 'return vbGelu4(a);'],
  [/return select\(a, 0\.0, a < 0\.0\);/g, 'return vbGelu(a);'],
];

/**
 * tfjs-webgpu's activation snippets for 'prelu' (scalar and vec4; `b` is the weight read at the output
 * coordinates), which {@link linearResidual} replaces by `a + b`.
 */
const PRELU_SNIPPETS: Array<[RegExp, string]> = [
  [
    /let aLessThanZero = vec4<f32>\(a < vec4<f32>\(0\.0\)\);\s*return \(aLessThanZero \* \(b \* a\)\) \+ \(\(vec4<f32>\(1\.0\) - aLessThanZero\) \* a\);/g,
    'return a + b;',
  ],
  [/if \(a < 0\.0\) \{ return b \* a; \}\s*return a;/g, 'return a + b;'],
];

/**
 * The backend's own `_FusedMatMul` (its tiled matmul programs, bias added in the epilogue) with the
 * activation function of each program it runs rewritten by `snippets` before compilation (own shader
 * key, `key`; `prelude` is prepended). One dispatch, as the matmul alone.
 */
function matMulWithEpilogue(
  kernel: string,
  key: string,
  snippets: Array<[RegExp, string]>,
  prelude: string,
  backend: unknown,
  inputs: tf.NamedTensorInfoMap,
  activation: 'relu' | 'prelu',
): tf.TensorInfo {
  const fused = tf.getKernel('_FusedMatMul', 'webgpu');
  if (!fused) throw new Error(`${kernel}: the webgpu backend has no _FusedMatMul kernel`);
  const b = backend as WebGPULikeBackend;
  const inner = b.runWebGPUProgram;
  b.runWebGPUProgram = function (this: WebGPULikeBackend, program, ...rest) {
    const code = program.getUserCode.bind(program);
    const text = code();
    if (text.includes('fn activation(')) {
      let replaced = 0;
      program.getUserCode = () => {
        let t = code();
        for (const [re, rep] of snippets) t = t.replace(re, () => (replaced++, rep));
        if (!replaced) throw new Error(`${kernel}: no ${activation} epilogue found in ${program.constructor.name}`);
        return prelude + t;
      };
      program.shaderKey += key;
    }
    return inner.call(this, program, ...rest);
  } as WebGPULikeBackend['runWebGPUProgram'];
  try {
    return fused.kernelFunc({
      inputs,
      backend: backend as tf.KernelBackend,
      attrs: { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 },
    }) as tf.TensorInfo;
  } finally {
    b.runWebGPUProgram = inner;
  }
}

/**
 * `gelu(a b + bias)`: the backend's `_FusedMatMul` asked for a 'relu' epilogue, with the activation
 * replaced by our exact GELU. One dispatch, as the matmul alone.
 */
function linearGelu({ inputs, backend }: Args): tf.TensorInfo {
  return matMulWithEpilogue(
    LINEAR_GELU_KERNEL,
    '_vbgelu',
    RELU_SNIPPETS,
    GELU_WGSL,
    backend,
    { a: inputs.a, b: inputs.b, bias: inputs.bias },
    'relu',
  );
}

/**
 * `a b + bias + residual`: the backend's `_FusedMatMul` asked for a 'prelu' epilogue with the residual
 * as its weights (read at the output coordinates), the prelu turned into an add. One dispatch.
 */
function linearResidual({ inputs, backend }: Args): tf.TensorInfo {
  const { a, b, bias, residual } = inputs as Record<string, tf.TensorInfo>;
  const ins = { a, b, bias, preluActivationWeights: residual };
  return matMulWithEpilogue(LINEAR_RESIDUAL_KERNEL, '_vbresidual', PRELU_SNIPPETS, '', backend, ins, 'prelu');
}

const KERNEL_FUNCS: Record<WebgpuKernelName, (args: Args) => tf.TensorInfo> = {
  VisBackbonesLayerNorm: layerNorm,
  [LAYER_NORM_RESIDUAL_KERNEL]: layerNorm,
  VisBackbonesGelu: gelu,
  [LINEAR_GELU_KERNEL]: linearGelu,
  [BIAS_MASK_SOFTMAX_KERNEL]: biasMaskSoftmax,
  [SCALED_RESIDUAL_KERNEL]: scaledResidual,
  [ATTENTION_CORE_KERNEL]: attentionCore,
  [WINDOW_PARTITION_KERNEL]: windowCopy(false),
  [WINDOW_REVERSE_KERNEL]: windowCopy(true),
  [GRN_KERNEL]: grn,
  [DW_CONV_LAYER_NORM_KERNEL]: dwConvLayerNorm,
  [LINEAR_RESIDUAL_KERNEL]: linearResidual,
} as Record<WebgpuKernelName, (args: Args) => tf.TensorInfo>;

/** Options of {@link registerWebgpuKernels}. */
export interface WebgpuKernelOptions {
  /** Register these (default: all of {@link WEBGPU_KERNEL_NAMES}). */
  kernels?: readonly WebgpuKernelName[];
}

/**
 * Register our WGSL kernels for the 'webgpu' backend (only for it; opt-in, nothing is registered on
 * import). Idempotent. Works before or after `@tensorflow/tfjs-backend-webgpu` is imported, and
 * without it (the kernels then never run). {@link unregisterWebgpuKernels} removes them.
 */
export function registerWebgpuKernels(opts: WebgpuKernelOptions = {}): void {
  registerFusedGradients();
  registerFusedLinearGradients();
  registerFusedWindowGradients();
  for (const name of opts.kernels ?? WEBGPU_KERNEL_NAMES) {
    const current = tf.getKernel(name, 'webgpu');
    if (current?.kernelFunc === (KERNEL_FUNCS[name] as unknown)) continue;
    if (current) tf.unregisterKernel(name, 'webgpu');
    tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: KERNEL_FUNCS[name] as unknown as tf.KernelFunc });
  }
}

/** Remove our webgpu kernels (the layers then compute the composed formulas on webgpu, as before). */
export function unregisterWebgpuKernels(): void {
  for (const name of WEBGPU_KERNEL_NAMES) if (webgpuKernelRegistered(name)) tf.unregisterKernel(name, 'webgpu');
}

/** Whether our kernel `name` is the one registered for 'webgpu' now. */
export function webgpuKernelRegistered(name: WebgpuKernelName): boolean {
  return tf.getKernel(name, 'webgpu')?.kernelFunc === (KERNEL_FUNCS[name] as unknown);
}
