import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelModule, Previous, kernelModuleFor, splitRange, threadsFor } from './kernelModule.js';

/**
 * Data-movement kernels for the wasm backend: `Slice`, `SplitV` and `Transpose` as strided copies on
 * the heap (`gatherRuns`), after merging the axes that are contiguous in the source. tfjs-wasm's
 * `Slice` (which `SplitV` calls) first copies the whole input out of the heap with `readSync` and then
 * copies rows of the innermost axis one typed-array `set` at a time: splitting a window-attention qkv
 * tensor cost more than its matmul. 4-byte dtypes only; anything else goes to the kernel replaced.
 */

/** One axis of a strided view: `n` entries `s` elements apart. */
interface Axis {
  n: number;
  s: number;
}

/** Up to four outer axes around a contiguous run (sizes in elements), or null if it needs more. */
interface CopyPlan {
  run: number;
  outer: [Axis, Axis, Axis, Axis];
}

/** Drop size-1 axes, merge axes contiguous in the source, split off the innermost contiguous run. */
export function planCopy(axes: Axis[]): CopyPlan | null {
  const merged: Axis[] = [];
  for (const a of axes) {
    if (a.n === 1) continue;
    const last = merged[merged.length - 1];
    if (last && last.s === a.s * a.n) {
      last.n *= a.n;
      last.s = a.s;
    } else merged.push({ ...a });
  }
  let run = 1;
  if (merged.length && merged[merged.length - 1].s === 1) run = merged.pop()!.n;
  if (merged.length > 4) return null;
  while (merged.length < 4) merged.unshift({ n: 1, s: 0 });
  return { run, outer: merged as CopyPlan['outer'] };
}

const is4Byte = (t: tf.TensorInfo) => t.dtype === 'float32' || t.dtype === 'int32';

/** Copy the view `plan` of `src` (starting `base` elements in) into `out`. */
function runCopy(mod: KernelModule, src: tf.TensorInfo, base: number, plan: CopyPlan, out: tf.TensorInfo): void {
  const [a0, a1, a2, a3] = plan.outer;
  const bytes = a0.n * a1.n * a2.n * a3.n * plan.run * 4;
  if (bytes === 0) return;
  const threads = threadsFor(mod, bytes);
  const p = mod.offset(src) + base * 4;
  const q = mod.offset(out);
  const args = [p, q, plan.run * 4, a1.n, a2.n, a3.n, a0.s * 4, a1.s * 4, a2.s * 4, a3.s * 4];
  mod.run(
    'gatherRuns',
    splitRange(a0.n, threads).map(([r0, r1]) => [...args, r0, r1]),
  );
}

function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** A slice of `x` as a copy plan: `[base, plan]`, or null. */
function slicePlan(x: tf.TensorInfo, begin: number[], size: number[]): [number, CopyPlan] | null {
  const st = strides(x.shape);
  const base = begin.reduce((acc, b, i) => acc + b * st[i], 0);
  const plan = planCopy(size.map((n, i) => ({ n, s: st[i] })));
  return plan ? [base, plan] : null;
}

/** `Slice` over the heap. */
export function makeSlice(previous: Previous) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const mod = kernelModuleFor(args.backend);
    if (!mod || !is4Byte(x)) return previous(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size);
    const p = slicePlan(x, b, s);
    if (!p) return previous(args);
    const out = mod.backend.makeOutput(s, x.dtype);
    runCopy(mod, x, p[0], p[1], out);
    return out;
  };
}

/** `SplitV` over the heap: one strided copy per piece. */
export function makeSplitV(previous: Previous) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const mod = kernelModuleFor(args.backend);
    if (!mod || !is4Byte(x)) return previous(args);
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number | number[] };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const plans: Array<[number[], [number, CopyPlan]]> = [];
    const begin = new Array<number>(x.shape.length).fill(0);
    for (const n of sizes) {
      const size = x.shape.slice();
      size[ax] = n;
      const p = slicePlan(x, begin, size);
      if (!p) return previous(args);
      plans.push([size, p]);
      begin[ax] += n;
    }
    return plans.map(([size, [base, plan]]) => {
      const out = mod.backend.makeOutput(size, x.dtype);
      runCopy(mod, x, base, plan, out);
      return out;
    });
  };
}

/** `Transpose` over the heap. */
export function makeTranspose(previous: Previous) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const mod = kernelModuleFor(args.backend);
    if (!mod || !is4Byte(x)) return previous(args);
    const { perm } = args.attrs as { perm: number[] };
    const st = strides(x.shape);
    const plan = planCopy(perm.map((p) => ({ n: x.shape[p], s: st[p] })));
    if (!plan) return previous(args);
    const outShape = perm.map((p) => x.shape[p]);
    if (plan.run > 1) {
      const out = mod.backend.makeOutput(outShape, x.dtype);
      runCopy(mod, x, 0, plan, out);
      return out;
    }
    // the innermost axis moves: a batch of [R, C] -> [C, R] transposes in 4x4 register blocks, or tfjs-wasm
    const [a0, a1, a2, a3] = plan.outer;
    const r = a3.n;
    const c = a2.n;
    if (a0.n !== 1 || a2.s !== 1 || a3.s !== c || (a1.n > 1 && a1.s !== r * c)) return previous(args);
    const out = mod.backend.makeOutput(outShape, x.dtype);
    const batch = a1.n;
    const threads = threadsFor(mod, batch * r * c * 4);
    const args2 = [mod.offset(x), mod.offset(out), r, c];
    if (batch >= threads)
      mod.run(
        'transpose2d',
        splitRange(batch, threads).map(([b0, b1]) => [...args2, b0, b1, 0, r]),
      );
    else
      mod.run(
        'transpose2d',
        splitRange(r, threads, 4).map(([i0, i1]) => [...args2, 0, batch, i0, i1]),
      );
    return out;
  };
}

/**
 * `Identity` without a copy: the output shares the input's heap data (reference-counted, as the
 * wasm backend's own `Reshape` does); tfjs-wasm copies it.
 */
export function makeIdentity() {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    (args.backend as { incRef(dataId: unknown): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/** `GatherV2` (batchDims 0, 4-byte values, int32 indices) as row copies; out-of-range indices throw as in tfjs. */
export function makeGather(previous: Previous) {
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const mod = kernelModuleFor(args.backend);
    if (!mod || !is4Byte(x) || indices.dtype !== 'int32' || (batchDims ?? 0) !== 0) return previous(args);
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const n = tf.util.sizeFromShape(indices.shape);
    const dim = x.shape[ax];
    const idx = new Int32Array(mod.memory.buffer, mod.offset(indices), n);
    for (let i = 0; i < n; i++) {
      if (idx[i] < 0 || idx[i] >= dim) throw new Error(`GatherV2: the index value ${idx[i]} is not in [0, ${dim - 1}]`);
    }
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    const out = mod.backend.makeOutput([...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], x.dtype);
    if (outer * n * inner === 0) return out;
    const bytes = outer * n * inner * 4;
    const threads = Math.min(outer, threadsFor(mod, bytes));
    const base = [mod.offset(x), mod.offset(indices), mod.offset(out), inner * 4, dim, n];
    mod.run(
      'gatherRows',
      splitRange(outer, threads).map(([o0, o1]) => [...base, o0, o1]),
    );
    return out;
  };
}
