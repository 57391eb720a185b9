import * as tf from '@tensorflow/tfjs';
import { KernelArgs, Previous, kernelModuleFor, splitRange, threadsFor } from './kernelModule.js';

/**
 * `Sum` for the wasm backend (float32) when the reduced axes form one contiguous block after
 * merging: `[O, R, I] -> [O, I]` summed in float64 (`reduceSum`). tfjs-wasm first transposes the
 * reduced axes to the end; a bias or normalisation gradient (sum over batch and pixels) paid a full
 * transpose of the activation for it.
 */

/** `[O, R, I]` sizes of a reduction over `axes` of `shape`, or null if the axes are not one block. */
export function reductionBlock(shape: number[], axes: number[]): [number, number, number] | null {
  const set = new Set(axes);
  // drop size-1 axes: they do not change the layout
  const dims = shape.map((n, i) => ({ n, r: set.has(i) })).filter((d) => d.n !== 1);
  let first = -1;
  let last = -1;
  dims.forEach((d, i) => {
    if (d.r) {
      if (first < 0) first = i;
      last = i;
    }
  });
  if (first < 0) return [dims.reduce((a, d) => a * d.n, 1), 1, 1];
  for (let i = first; i <= last; i++) if (!dims[i].r) return null;
  const size = (a: number, b: number) => dims.slice(a, b).reduce((p, d) => p * d.n, 1);
  return [size(0, first), size(first, last + 1), size(last + 1, dims.length)];
}

/** `Sum` over the heap. */
export function makeSum(previous: Previous) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const mod = kernelModuleFor(args.backend);
    if (!mod || x.dtype !== 'float32') return previous(args);
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const block = reductionBlock(x.shape, axes);
    if (!block) return previous(args);
    const [o, r, i] = block;
    const outShape = keepDims ? x.shape.map((n, k) => (axes.includes(k) ? 1 : n)) : x.shape.filter((_, k) => !axes.includes(k));
    const out = mod.backend.makeOutput(outShape, 'float32');
    if (o * i === 0) return out;
    if (r === 0) {
      new Float32Array(mod.memory.buffer, mod.offset(out), o * i).fill(0);
      return out;
    }
    const px = mod.offset(x);
    const py = mod.offset(out);
    const threads = Math.max(1, Math.min(o, threadsFor(mod, o * r * i)));
    mod.run(
      'reduceSum',
      splitRange(o, threads).map(([o0, o1]) => [px, py, r, i, o0, o1]),
    );
    return out;
  };
}
