import * as tf from '@tensorflow/tfjs';
import { fusedLinearGelu, fusedLinearResidual, LINEAR_GELU_KERNEL, LINEAR_RESIDUAL_KERNEL } from '../backends/fusedLinear.js';
import { check } from '../errors.js';
import { truncNormal } from './init.js';
import { LINEAR, Module, Parameter } from './module.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  bias?: boolean;
  /** Standard deviation of the truncated-normal weight init (timm's default 0.02). */
  initStd?: number;
}

/**
 * `x W + b` for a 2-D `x` `[rows, in]` and `W` `[in, out]`: every dense product of the package
 * ({@link Linear}, patchify and 1x1 convolutions) goes through here, so equal math gives equal bits
 * whichever module computes it. With a bias it is `tf.fused.matMul`, whose kernel is matMul then add
 * on cpu (the same values) and one pass on wasm with our kernels (the bias is added as the GEMM
 * stores its tiles).
 */
export function denseProduct(x: tf.Tensor2D, w: tf.Tensor2D, bias: tf.Tensor | null): tf.Tensor2D {
  return (bias ? tf.fused.matMul({ a: x, b: w, bias }) : tf.matMul(x, w)) as tf.Tensor2D;
}

/**
 * A fully connected layer `y = x W^T + b` (PyTorch's `nn.Linear`). The kernel is kept `[in, out]`
 * and every input is flattened to 2-D, so the matmul stays on the backend's fast GEMM path.
 * State-dict keys `weight` `[out, in]` and `bias` `[out]`.
 */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    this.config = { inFeatures, outFeatures, ...opts };
    this.weight = this.addParameter('weight', truncNormal([inFeatures, outFeatures], opts.initStd ?? 0.02), LINEAR);
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', tf.zeros([outFeatures])) : null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    const d = x.shape[x.rank - 1];
    check(d === this.inFeatures, () => `Linear expected ${this.inFeatures} input features, got ${d} (shape [${x.shape.join(', ')}])`);
    return tf.tidy(() => {
      const x2 = x.rank === 2 ? x : x.reshape([-1, d]);
      const y = denseProduct(x2 as tf.Tensor2D, this.weight.value as tf.Tensor2D, this.bias?.value ?? null);
      return x.rank === 2 ? y : y.reshape([...x.shape.slice(0, -1), this.outFeatures]);
    });
  }
}

/**
 * `gelu(fc(x))` (exact GELU) as one kernel where the active backend has one (webgpu after
 * `registerWebgpuKernels()`: the matmul with the bias and GELU in its epilogue), else null, and the
 * caller applies the layer and the activation as usual. `fc`: a Linear, or a 1x1 convolution's
 * `[in, out]` weight and bias as one.
 */
export function linearGelu(fc: Pick<Linear, 'weight' | 'bias' | 'inFeatures' | 'outFeatures'>, x: tf.Tensor): tf.Tensor | null {
  if (!fc.bias || x.dtype !== 'float32' || x.shape[x.rank - 1] !== fc.inFeatures || !tf.getKernel(LINEAR_GELU_KERNEL, tf.getBackend()))
    return null;
  const bias = fc.bias.value;
  return tf.tidy(() => {
    const x2 = (x.rank === 2 ? x : x.reshape([-1, fc.inFeatures])) as tf.Tensor2D;
    const y = fusedLinearGelu(x2, fc.weight.value as tf.Tensor2D, bias)!; // float32, bias [out], kernel present: never null
    return x.rank === 2 ? y : y.reshape([...x.shape.slice(0, -1), fc.outFeatures]);
  });
}

/**
 * `residual + fc(x)` as one kernel where the active backend has one (webgpu after
 * `registerWebgpuKernels()`: the matmul with the bias and the residual added in its epilogue), else
 * null, and the caller applies the layer and the add as usual. `residual` has the shape of `fc(x)`.
 */
export function linearAdd(
  fc: Pick<Linear, 'weight' | 'bias' | 'inFeatures' | 'outFeatures'>,
  x: tf.Tensor,
  residual: tf.Tensor,
): tf.Tensor | null {
  if (!fc.bias || x.dtype !== 'float32' || residual.dtype !== 'float32' || x.shape[x.rank - 1] !== fc.inFeatures) return null;
  if (residual.shape.join() !== [...x.shape.slice(0, -1), fc.outFeatures].join() || !tf.getKernel(LINEAR_RESIDUAL_KERNEL, tf.getBackend()))
    return null;
  const bias = fc.bias.value;
  return tf.tidy(() => {
    const x2 = (x.rank === 2 ? x : x.reshape([-1, fc.inFeatures])) as tf.Tensor2D;
    const r2 = (residual.rank === 2 ? residual : residual.reshape([-1, fc.outFeatures])) as tf.Tensor2D;
    const y = fusedLinearResidual(x2, fc.weight.value as tf.Tensor2D, bias, r2)!; // checked above: never null
    return x.rank === 2 ? y : y.reshape(residual.shape);
  });
}
