import * as tf from '@tensorflow/tfjs';

/** FLOPs of one kernel call from its name and shapes (2 per multiply-add); 0 for kernels that are not counted. */
function kernelFlops(name: string, inputShapes: number[][], outputShapes: number[][]): number {
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const out = outputShapes[0] ?? [];
  switch (name) {
    case '_FusedMatMul':
    case 'BatchMatMul': {
      // output [..., m, n]; the shared dimension is the last axis of A unless A was transposed: use sizes
      const a = inputShapes[0];
      const m = out[out.length - 2];
      const k = prod(a.slice(-2)) / m; // A's matrix is m x k (or k x m when transposed)
      return 2 * prod(out) * k;
    }
    case 'Conv2D':
    case 'FusedConv2D': {
      const w = inputShapes[1];
      return 2 * prod(out) * w[0] * w[1] * w[2];
    }
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D': {
      const w = inputShapes[1];
      return 2 * prod(out) * w[0] * w[1];
    }
    case 'Conv2DBackpropInput': {
      const w = inputShapes[1];
      return 2 * prod(inputShapes[0]) * w[0] * w[1] * w[3];
    }
    default:
      return 0;
  }
}

/**
 * Count the FLOPs (2 x multiply-adds of matmuls and convolutions, as fvcore / timm count MACs x 2)
 * of running `fn` once, by profiling the kernels it dispatches. Elementwise work is not counted.
 */
export async function countFlops(fn: () => tf.Tensor | tf.Tensor[]): Promise<number> {
  const info = await tf.profile(() => fn());
  let total = 0;
  for (const k of info.kernels) total += kernelFlops(k.name, k.inputShapes as number[][], k.outputShapes as number[][]);
  return total;
}
