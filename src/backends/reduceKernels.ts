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
    const threads = threadsFor(mod, o * r * i);
    const scratch = (width: number, t: number) => (i === 1 ? 0 : mod.scratch(12 * width + 16, t));
    // the outer blocks across threads where there are enough, else the columns (a bias gradient: o = 1)
    const jobs =
      o >= threads || i < 8 * threads
        ? splitRange(o, Math.min(o, threads)).map(([o0, o1], t) => [px, py, r, i, o0, o1, 0, i, scratch(i, t)])
        : splitRange(i, threads, 4).map(([i0, i1], t) => [px, py, r, i, 0, o, i0, i1, scratch(i1 - i0, t)]);
    mod.run('reduceSum', jobs);
    return out;
  };
}
