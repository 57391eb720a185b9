import * as tf from '@tensorflow/tfjs';
import { layerNormGrads } from './fusedOps.js';

/**
 * More fused ops, like `fusedOps.ts`: each runs as one kernel on a backend where a kernel of that
 * name is registered (our webgpu kernels, `webgpu/kernels.ts`, after `registerWebgpuKernels()`),
 * and returns null elsewhere, where the caller computes the composed formula (so cpu and wasm
 * results do not change). Their gradients are written with ordinary ops.
 */

/** `gelu(x W + b)` (exact GELU), x `[rows, in]`, W `[in, out]`, b `[out]`. */
export const LINEAR_GELU_KERNEL = 'VisBackbonesLinearGelu';
/** `r + LayerNorm(x)` over the last axis. */
export const LAYER_NORM_RESIDUAL_KERNEL = 'VisBackbonesLayerNormResidual';
/** `x + gamma * y`, gamma per channel (last axis). */
export const SCALED_RESIDUAL_KERNEL = 'VisBackbonesScaledResidual';
/** `x W + b + r` (a linear layer and the residual add after it), x `[rows, in]`, W `[in, out]`, b `[out]`, r `[rows, out]`. */
export const LINEAR_RESIDUAL_KERNEL = 'VisBackbonesLinearResidual';

function available(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

/** `gelu(a b + bias)` as one kernel (a 2-D float32 `[rows, in]`, b `[in, out]`, bias `[out]`), or null where there is none. */
export function fusedLinearGelu(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || bias.rank !== 1 || !available(LINEAR_GELU_KERNEL)) return null;
  return tf.engine().runKernel(LINEAR_GELU_KERNEL, { a, b, bias }) as tf.Tensor2D;
}

/**
 * `a b + bias + residual` as one kernel (a 2-D float32 `[rows, in]`, b `[in, out]`, bias `[out]`,
 * residual `[rows, out]`), or null where there is none. The sum is taken in that order, as
 * `tf.add(tf.fused.matMul(...), residual)`.
 */
export function fusedLinearResidual(a: tf.Tensor2D, b: tf.Tensor2D, bias: tf.Tensor, residual: tf.Tensor2D): tf.Tensor2D | null {
  if ([a, b, bias, residual].some((t) => t.dtype !== 'float32') || bias.rank !== 1 || !available(LINEAR_RESIDUAL_KERNEL)) return null;
  if (a.rank !== 2 || b.rank !== 2 || residual.rank !== 2 || residual.shape[0] !== a.shape[0] || residual.shape[1] !== b.shape[1])
    return null;
  return tf.engine().runKernel(LINEAR_RESIDUAL_KERNEL, { a, b, bias, residual }) as tf.Tensor2D;
}

/** `residual + LayerNorm(x)` (weight, bias over the last axis) as one kernel, or null where there is none. */
export function fusedLayerNormResidual(
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
  residual: tf.Tensor,
): tf.Tensor | null {
  if (x.dtype !== 'float32' || residual.dtype !== 'float32' || !available(LAYER_NORM_RESIDUAL_KERNEL)) return null;
  if (residual.shape.join() !== x.shape.join()) return null;
  return tf.engine().runKernel(LAYER_NORM_RESIDUAL_KERNEL, { x, weight, bias, residual }, { eps }) as tf.Tensor;
}

/** `x + gamma * y` (gamma `[C]`, the last axis of x and y, same shapes) as one kernel, or null where there is none. */
export function fusedScaledResidual(x: tf.Tensor, y: tf.Tensor, gamma: tf.Tensor): tf.Tensor | null {
  if (x.dtype !== 'float32' || y.dtype !== 'float32' || !available(SCALED_RESIDUAL_KERNEL)) return null;
  if (x.shape.join() !== y.shape.join() || gamma.rank !== 1 || gamma.shape[0] !== x.shape[x.rank - 1]) return null;
  return tf.engine().runKernel(SCALED_RESIDUAL_KERNEL, { x, y, gamma }) as tf.Tensor;
}

/** d gelu(z) / dz = Phi(z) + z phi(z). */
function geluDerivative(z: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(z, Math.SQRT1_2)), 1), 0.5);
    const pdf = tf.mul(tf.exp(tf.mul(tf.square(z), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return tf.add(cdf, tf.mul(z, pdf));
  });
}

let registered = false;

/** Register the gradients of these fused kernels (backend-independent; idempotent). */
export function registerFusedLinearGradients(): void {
  if (registered) return;
  registered = true;
  tf.registerGradient({
    kernelName: LINEAR_GELU_KERNEL,
    inputsToSave: ['a', 'b', 'bias'],
    gradFunc: (dy, saved) => {
      const [a, b, bias] = saved;
      const dz = () => tf.tidy(() => tf.mul(dy as tf.Tensor, geluDerivative(tf.add(tf.matMul(a, b), bias))));
      return {
        a: () => tf.tidy(() => tf.matMul(dz(), b, false, true)),
        b: () => tf.tidy(() => tf.matMul(a, dz(), true, false)),
        bias: () => tf.tidy(() => tf.sum(dz(), 0)),
      };
    },
  });
  tf.registerGradient({
    kernelName: LINEAR_RESIDUAL_KERNEL,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = saved;
      const g = dy as tf.Tensor;
      return {
        a: () => tf.matMul(g, b, false, true),
        b: () => tf.matMul(a, g, true, false),
        bias: () => tf.sum(g, 0),
        residual: () => g.clone(),
      };
    },
  });
  tf.registerGradient({
    kernelName: LAYER_NORM_RESIDUAL_KERNEL,
    inputsToSave: ['x', 'weight'],
    gradFunc: (dy, saved, attrs) => {
      const g = dy as tf.Tensor;
      return { ...layerNormGrads(g, saved[0], saved[1], (attrs as unknown as { eps: number }).eps), residual: () => g.clone() };
    },
  });
  tf.registerGradient({
    kernelName: SCALED_RESIDUAL_KERNEL,
    inputsToSave: ['y', 'gamma'],
    gradFunc: (dy, saved) => {
      const [y, gamma] = saved;
      const g = dy as tf.Tensor;
      const lead = Array.from({ length: y.rank - 1 }, (_, i) => i);
      return {
        x: () => g.clone(),
        y: () => tf.mul(g, gamma),
        gamma: () => tf.tidy(() => tf.sum(tf.mul(g, y), lead)),
      };
    },
  });
}
