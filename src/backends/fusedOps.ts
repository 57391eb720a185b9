import * as tf from '@tensorflow/tfjs';

/**
 * Fused single-pass versions of GELU and LayerNorm, available on a backend only where a kernel of
 * that name is registered for it (our wasm kernels, registered on import: `fastKernels.ts`). The layers call
 * {@link fusedGelu} / {@link fusedLayerNorm} first and compute the composed formula when they return
 * null, so the math is the same on every backend. Their gradients are written with ordinary ops.
 */

/** Names of the fused kernels (registered for 'wasm' by `fastKernels.ts`). */
export const GELU_KERNEL = 'VisBackbonesGelu';
export const GELU_GRAD_KERNEL = 'VisBackbonesGeluGrad';
export const LAYER_NORM_KERNEL = 'VisBackbonesLayerNorm';
export const LAYER_NORM_GRAD_X_KERNEL = 'VisBackbonesLayerNormGradX';
export const LAYER_NORM_GRAD_W_KERNEL = 'VisBackbonesLayerNormGradW';

function available(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

/** Exact GELU `(x * 0.5) * (erf(x / sqrt 2) + 1)` as one kernel, or null where there is none. */
export function fusedGelu(x: tf.Tensor): tf.Tensor | null {
  if (x.dtype !== 'float32' || !available(GELU_KERNEL)) return null;
  return tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor;
}

/**
 * LayerNorm over the last axis, `((x - mean) / sqrt(var + eps)) * weight + bias`, as one kernel, or
 * null where there is none.
 */
export function fusedLayerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor | null {
  if (x.dtype !== 'float32' || !available(LAYER_NORM_KERNEL)) return null;
  return tf.engine().runKernel(LAYER_NORM_KERNEL, { x, weight, bias }, { eps }) as tf.Tensor;
}

let gradientsRegistered = false;

/** Register the gradients of the fused kernels (backend-independent; idempotent). */
export function registerFusedGradients(): void {
  if (gradientsRegistered) return;
  gradientsRegistered = true;
  tf.registerGradient({
    kernelName: GELU_KERNEL,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      // d/dx [x Phi(x)] = Phi(x) + x phi(x)
      if (available(GELU_GRAD_KERNEL)) return { x: () => tf.engine().runKernel(GELU_GRAD_KERNEL, { x, dy: dy as tf.Tensor }) as tf.Tensor };
      return {
        x: () =>
          tf.tidy(() => {
            const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5);
            const pdf = tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
            return tf.mul(dy as tf.Tensor, tf.add(cdf, tf.mul(x, pdf)));
          }),
      };
    },
  });
  tf.registerGradient({
    kernelName: LAYER_NORM_KERNEL,
    inputsToSave: ['x', 'weight'],
    gradFunc: (dy, saved, attrs) => layerNormGrads(dy as tf.Tensor, saved[0], saved[1], (attrs as unknown as { eps: number }).eps),
  });
}

/**
 * The gradients of LayerNorm over the last axis, `y = xhat * weight + bias` with
 * `xhat = (x - mean) * rstd`, as lazy functions (the form `tf.registerGradient` wants), from `x`, the
 * weight and the incoming gradient `g`; shared by every fused kernel that ends in a LayerNorm. Where the
 * backend has the two gradient kernels (wasm), the input and weight gradients are one kernel each.
 */
export function layerNormGrads(
  g: tf.Tensor,
  x: tf.Tensor,
  weight: tf.Tensor,
  eps: number,
): { x: () => tf.Tensor; weight: () => tf.Tensor; bias: () => tf.Tensor } {
  const lead = Array.from({ length: x.rank - 1 }, (_, i) => i);
  if ([g, x, weight].every((t) => t.dtype === 'float32') && available(LAYER_NORM_GRAD_X_KERNEL) && available(LAYER_NORM_GRAD_W_KERNEL)) {
    // one pass per gradient (our wasm kernels) instead of about twenty full-size ops
    return {
      x: () => tf.engine().runKernel(LAYER_NORM_GRAD_X_KERNEL, { x, weight, dy: g }, { eps }) as tf.Tensor,
      weight: () => tf.engine().runKernel(LAYER_NORM_GRAD_W_KERNEL, { x, dy: g }, { eps }) as tf.Tensor,
      bias: () => tf.sum(g, lead),
    };
  }
  const xhat = () => {
    const { mean, variance } = tf.moments(x, -1, true);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    return { xh: tf.mul(tf.sub(x, mean), rstd), rstd };
  };
  return {
    x: () =>
      tf.tidy(() => {
        const { xh, rstd } = xhat();
        const gw = tf.mul(g, weight);
        const m1 = tf.mean(gw, -1, true);
        const m2 = tf.mean(tf.mul(gw, xh), -1, true);
        return tf.mul(rstd, tf.sub(tf.sub(gw, m1), tf.mul(xh, m2)));
      }),
    weight: () => tf.tidy(() => tf.sum(tf.mul(g, xhat().xh), lead)),
    bias: () => tf.sum(g, lead),
  };
}
