import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelName, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';

/**
 * Elementwise and row kernels for the wasm backend (`native/assembly/pointwise.ts`, `rowNorm.ts`):
 * `Erf` with a SIMD polynomial (within 2.6 ulp), and the fused GELU, GELU gradient and LayerNorm
 * kernels that `fusedOps.ts` calls, and ConvNeXt V2's global response norm (`native/assembly/grn.ts`)
 * for `fusedGrn` (`fusedAttention.ts`: inference only).
 */
/**
 * A float32 elementwise kernel `y = f(x)` run by the module's export `kernel` with arguments
 * `(...lead, x, y, i0, i1)` over element ranges split across threads (`workPerElement` weighs the
 * split); other dtypes go to `previous`.
 */
export function makeElementwise(kernel: KernelName, workPerElement: number, previous: Previous, lead: number[] = []) {
  return (args: KernelArgs): KernelResult => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const mod = kernelModuleFor(args.backend);
    if (!mod || x.dtype !== 'float32') return previous(args);
    const out = mod.backend.makeOutput(x.shape, 'float32');
    const n = prod(x.shape);
    if (n === 0) return out;
    const [px, py] = [mod.offset(x), mod.offset(out)];
    mod.run(
      kernel,
      splitRange(n, threadsFor(mod, n * workPerElement), 4).map(([i0, i1]) => [...lead, px, py, i0, i1]),
    );
    return out;
  };
}

/** `Erf` / `VisBackbonesGelu`: one elementwise pass (float32; others go to `previous`). */
export function makeUnary(kernel: 'erf' | 'gelu', previous: Previous) {
  return makeElementwise(kernel, 8, previous);
}

/** `VisBackbonesGeluGrad`: `dy * GELU'(x)` in one pass. */
export function geluGradKernel(args: KernelArgs): KernelResult {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error(`VisBackbonesGeluGrad: the kernel module could not be instantiated`);
  const out = mod.backend.makeOutput(x.shape, 'float32');
  const n = prod(x.shape);
  if (n === 0) return out;
  const [px, pdy, pdx] = [mod.offset(x), mod.offset(dy), mod.offset(out)];
  mod.run(
    'geluGrad',
    splitRange(n, threadsFor(mod, n * 12), 4).map(([i0, i1]) => [px, pdy, pdx, i0, i1]),
  );
  return out;
}

/**
 * A kernel over the rows of `x` (its last axis, `C`): the module's `kernel` with arguments
 * `(...inputs, out, C, eps, r0, r1)`, `out` shaped as `x`, rows split across threads (`workPerElement`
 * weighs the split).
 */
function rowKernel(args: KernelArgs, kernel: 'layerNorm' | 'layerNormGradX', inputs: string[], workPerElement: number): KernelResult {
  const x = args.inputs.x as tf.TensorInfo;
  const { eps } = args.attrs as { eps: number };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error(`LayerNorm (${kernel}): the kernel module could not be instantiated`);
  const c = x.shape[x.shape.length - 1];
  const rows = prod(x.shape) / Math.max(c, 1);
  const out = mod.backend.makeOutput(x.shape, 'float32');
  if (rows === 0 || c === 0) return out;
  const base = [...inputs.map((k) => mod.offset(args.inputs[k] as tf.TensorInfo)), mod.offset(out), c, eps];
  mod.run(
    kernel,
    splitRange(rows, threadsFor(mod, rows * c * workPerElement)).map(([r0, r1]) => [...base, r0, r1]),
  );
  return out;
}

/** `VisBackbonesLayerNorm`: LayerNorm over the last axis (x, weight, bias), one pass per row. */
export function layerNormKernel(args: KernelArgs): KernelResult {
  return rowKernel(args, 'layerNorm', ['x', 'weight', 'bias'], 4);
}

/** `VisBackbonesLayerNormGradX`: the input gradient of LayerNorm (x, weight, dy), one row at a time. */
export function layerNormGradXKernel(args: KernelArgs): KernelResult {
  return rowKernel(args, 'layerNormGradX', ['x', 'weight', 'dy'], 6);
}

/** Scratch slot of the float64 sums of {@link layerNormGradWKernel} (shared by the threads: each writes its channels). */
const ACC_SLOT = 64;

/** `VisBackbonesLayerNormGradW`: the weight gradient of LayerNorm (x, dy) summed over the rows, channels split across threads. */
export function layerNormGradWKernel(args: KernelArgs): KernelResult {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { eps } = args.attrs as { eps: number };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error(`VisBackbonesLayerNormGradW: the kernel module could not be instantiated`);
  const c = x.shape[x.shape.length - 1];
  const rows = prod(x.shape) / Math.max(c, 1);
  const out = mod.backend.makeOutput([c], 'float32');
  if (c === 0) return out;
  const base = [mod.offset(x), mod.offset(dy), mod.offset(out), mod.scratch(c * 8, ACC_SLOT), c, eps, rows];
  mod.run(
    'layerNormGradW',
    splitRange(c, threadsFor(mod, rows * c * 6), 4).map(([c0, c1]) => [...base, c0, c1]),
  );
  return out;
}

/** `VisBackbonesGrn`: global response norm of an NHWC map in two passes per image, images split across threads. */
export function grnKernel(args: KernelArgs): KernelResult {
  const { x, weight, bias } = args.inputs as { x: tf.TensorInfo; weight: tf.TensorInfo; bias: tf.TensorInfo };
  const { eps } = args.attrs as { eps: number };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error(`VisBackbonesGrn: the kernel module could not be instantiated`);
  const [b, h, w, c] = x.shape;
  const out = mod.backend.makeOutput(x.shape, 'float32');
  if (prod(x.shape) === 0) return out;
  const base = [mod.offset(x), mod.offset(weight), mod.offset(bias), mod.offset(out), h * w, c, eps];
  mod.run(
    'grn',
    splitRange(b, threadsFor(mod, prod(x.shape) * 4)).map(([b0, b1], t) => [...base, mod.scratch(12 * c, t), b0, b1]),
  );
  return out;
}
