import * as tf from '@tensorflow/tfjs';
import { fusedGelu } from '../backends/fusedOps.js';
import { Module } from './module.js';

/**
 * Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (Hendrycks & Gimpel 2016, eq. 1), PyTorch's default `nn.GELU`.
 * One fused kernel where the backend has it (wasm, with the package's kernels), the same formula otherwise.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusedGelu(x) ?? tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** Names of the activations a config can ask for. */
export type ActivationName = 'gelu' | 'relu' | 'silu' | 'identity';

/** Look up an activation function by name. */
export function getActivation(name: ActivationName): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'relu':
      return (x) => tf.relu(x);
    case 'silu':
      return (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
    case 'identity':
      return (x) => x.clone();
    default:
      throw new Error(`unknown activation '${name as string}'`);
  }
}

/** Exact GELU as a module. */
export class GELU extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return gelu(x);
  }
}

/** Pass-through module (PyTorch's `nn.Identity`); returns a new handle so callers can dispose freely. */
export class Identity extends Module {
  forward(x: tf.Tensor): tf.Tensor {
    return x.clone();
  }
}
