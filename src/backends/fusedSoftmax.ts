import * as tf from '@tensorflow/tfjs';

/**
 * Window attention's `softmax(logits + bias + mask)` as one op: a single pass over the logits on a
 * backend where our kernel is registered (the wasm kernels: `softmaxKernels.ts`), instead of an add
 * of the bias/mask table, a broadcast add and a softmax. Elsewhere {@link fusedBiasMaskSoftmax}
 * returns null and the caller computes that composition (`biasMaskSoftmax` in `layers/attention.ts`),
 * so results on other backends do not change. The gradient (registered on import) is tfjs's softmax
 * gradient, by our one-pass kernel where there is one, summed over the broadcast axes for bias and mask.
 */

/** Name of the fused kernel (registered for 'wasm' by our kernels). */
export const BIAS_MASK_SOFTMAX_KERNEL = 'VisBackbonesBiasMaskSoftmax';
/** Name of the one-pass softmax gradient kernel (registered for 'wasm' by our kernels). */
export const SOFTMAX_GRAD_KERNEL = 'VisBackbonesSoftmaxGrad';

function available(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) !== undefined;
}

/**
 * `softmax(attn + (bias + mask))` over the last axis as one kernel, or null where there is none (or the
 * shapes are not window attention's). `attn`: `[B * nW * heads, N, M]` logits; `bias`: `[heads, N, M]`
 * (the relative position bias) or null; `mask`: `[nW, N, M]` (the shifted-window mask) or null. Logit
 * `g` takes `bias[g % heads]` and `mask[floor(g / heads) % nW]`, as `addBiasAndMask` broadcasts them.
 */
export function fusedBiasMaskSoftmax(attn: tf.Tensor, bias: tf.Tensor | null, mask: tf.Tensor | null, heads: number): tf.Tensor3D | null {
  if (attn.rank !== 3 || attn.dtype !== 'float32' || !available(BIAS_MASK_SOFTMAX_KERNEL)) return null;
  const [g, n, m] = attn.shape;
  const windows = mask ? mask.shape[0] : 1;
  const fits = (t: tf.Tensor | null, lead: number) =>
    !t || (t.dtype === 'float32' && t.rank === 3 && t.shape[0] === lead && t.shape[1] === n && t.shape[2] === m);
  if (!Number.isInteger(heads) || heads < 1 || windows < 1 || !fits(bias, heads) || !fits(mask, windows) || g % (heads * windows) !== 0)
    return null;
  const inputs: tf.NamedTensorMap = { x: attn };
  if (bias) inputs.bias = bias;
  if (mask) inputs.mask = mask;
  return tf.engine().runKernel(BIAS_MASK_SOFTMAX_KERNEL, inputs, { heads, windows }) as tf.Tensor3D;
}

/** Gradient of a softmax over the last axis given its output `y`: tfjs's `dy * y - sum(dy * y) * y`. */
function softmaxBackward(y: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  if (available(SOFTMAX_GRAD_KERNEL)) return tf.engine().runKernel(SOFTMAX_GRAD_KERNEL, { y, dy }) as tf.Tensor;
  return tf.tidy(() => {
    const dyTimesY = tf.mul(dy, y);
    return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, -1, true), y));
  });
}

if (!tf.getGradient(BIAS_MASK_SOFTMAX_KERNEL)) {
  tf.registerGradient({
    kernelName: BIAS_MASK_SOFTMAX_KERNEL,
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [y] = saved;
      const { heads, windows } = attrs as unknown as { heads: number; windows: number };
      const [g, n, m] = y.shape;
      // d(logits); x's gradient, and summed over the axes bias and mask are broadcast along
      const dz = softmaxBackward(y, dy as tf.Tensor);
      return {
        x: () => dz,
        bias: () => tf.sum(dz.reshape([g / heads, heads, n, m]), 0),
        mask: () =>
          tf.tidy(() => {
            const perWindow = tf.sum(dz.reshape([g / (heads * windows), windows, heads, n * m]), 0); // [nW, heads, N*M]
            return tf.sum(perWindow, 1).reshape([windows, n, m]);
          }),
      };
    },
  });
}
