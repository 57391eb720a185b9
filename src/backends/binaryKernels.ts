import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';
import { makeElementwise } from './pointwiseKernels.js';

/**
 * Elementwise binary kernels for the wasm backend (`native/assembly/binary.ts`): `Add`, `Sub`,
 * `Multiply`, `RealDiv`, `Maximum`, `Minimum` and `Square` on float32, with any broadcast whose output
 * axes merge into at most three groups (same shapes, a bias row, a per-row scalar, a per-head scale,
 * ...). The values equal tfjs's (IEEE single-precision lane operations). tfjs-wasm runs these on one
 * thread; ours split rows, or a long row, across the kernel pool. Other dtypes and broadcasts go to the
 * kernel replaced. Also `Relu` and `Sigmoid` (the cosine attention's position-bias MLP), which the threaded
 * tfjs-wasm binary runs slowly.
 */

/** Op codes of the `binary` kernel. */
const OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5 } as const;
/** A binary kernel we replace. */
export type BinaryKernelName = keyof typeof OPS;

/** Work units per output element for {@link threadsFor} (memory-bound: three streams). */
const WORK_PER_ELEMENT = 8;

/**
 * The output shape of `a op b` merged into `[P, Q, R]` row groups with each operand's strides (in
 * elements) over P and Q and whether it runs along R, or null if it needs more than three groups.
 */
export function broadcastPlan(
  aShape: number[],
  bShape: number[],
): { out: number[]; Q: number; R: number; rows: number; sa: [number, number]; sb: [number, number]; aVec: boolean; bVec: boolean } | null {
  let out: number[];
  try {
    out = tf.backend_util.assertAndGetBroadcastShape(aShape, bShape);
  } catch {
    return null;
  }
  const pad = (s: number[]) => [...new Array<number>(out.length - s.length).fill(1), ...s];
  const a = pad(aShape);
  const b = pad(bShape);
  // groups of adjacent output axes where each operand is either present (not broadcast) or broadcast
  const groups: Array<{ n: number; ha: boolean; hb: boolean }> = [];
  for (let d = 0; d < out.length; d++) {
    if (out[d] === 1) continue;
    const ha = a[d] !== 1;
    const hb = b[d] !== 1;
    const last = groups[groups.length - 1];
    if (last && last.ha === ha && last.hb === hb) last.n *= out[d];
    else groups.push({ n: out[d], ha, hb });
  }
  if (groups.length > 3) return null;
  while (groups.length < 3) groups.unshift({ n: 1, ha: true, hb: true });
  const [gp, gq, gr] = groups;
  const strides = (h: (g: { ha: boolean; hb: boolean }) => boolean): [number, number] => {
    const sR = h(gr) ? gr.n : 1;
    const sQ = h(gq) ? sR : 0;
    const sP = h(gp) ? (h(gq) ? gq.n : 1) * sR : 0;
    return [sP, sQ];
  };
  return {
    out,
    Q: gq.n,
    R: gr.n,
    rows: gp.n * gq.n,
    sa: strides((g) => g.ha),
    sb: strides((g) => g.hb),
    aVec: gr.ha,
    bVec: gr.hb,
  };
}

/** `a op b` into a new tensor, or null where ours does not apply. */
function runBinary(args: KernelArgs, op: number, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | null {
  const mod = kernelModuleFor(args.backend);
  if (!mod || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const plan = broadcastPlan(a.shape, b.shape);
  if (!plan) return null;
  const out = mod.backend.makeOutput(plan.out, 'float32');
  const n = prod(plan.out);
  if (n === 0) return out;
  const base = [
    op,
    mod.offset(a),
    mod.offset(b),
    mod.offset(out),
    plan.Q,
    plan.R,
    ...plan.sa,
    ...plan.sb,
    plan.aVec ? 1 : 0,
    plan.bVec ? 1 : 0,
  ];
  const threads = threadsFor(mod, n * WORK_PER_ELEMENT);
  const jobs =
    plan.rows >= threads
      ? splitRange(plan.rows, threads).map(([i0, i1]) => [...base, i0, i1, 0, plan.R])
      : splitRange(plan.R, threads, 4).map(([r0, r1]) => [...base, 0, plan.rows, r0, r1]);
  mod.run('binary', jobs);
  return out;
}

/** One of `Add`, `Sub`, `Multiply`, `RealDiv`, `Maximum`, `Minimum` (inputs `a`, `b`). */
export function makeBinary(name: BinaryKernelName, previous: Previous) {
  const op = OPS[name];
  return (args: KernelArgs): KernelResult => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    return runBinary(args, op, a, b) ?? previous(args);
  };
}

/** `Square` as `x * x` (the same value as tfjs's). */
export function makeSquare(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    return runBinary(args, OPS.Multiply, x, x) ?? previous(args);
  };
}

/** `Relu` (`Math.max(0, x)`, exact) and `Sigmoid` (`1 / (1 + exp(-x))` with our float32 `exp`: within 3 ulp, a denormal result as 0) on float32. */
export function makeUnaryActivation(name: 'Relu' | 'Sigmoid', previous: Previous) {
  const op = name === 'Relu' ? 0 : 1;
  return makeElementwise('unary', op === 0 ? 4 : 8, previous, [op]);
}
