import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelModule, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';

/**
 * Softmax kernels for the wasm backend (`native/assembly/softmax.ts`): `Softmax` over the last axis,
 * the fused window-attention `softmax(logits + bias + mask)` and the softmax gradient that
 * `fusedSoftmax.ts` calls. Rows are split across the kernel pool's threads when there are many.
 */

/** Work units per element (three passes, a polynomial `exp`), for {@link threadsFor}. */
const WORK_PER_ELEMENT = 8;

/** `y = softmax(x + bias[h] + mask[w])` over the last axis of `x` (`[G, N, M]`, or any shape with no bias/mask). */
function runSoftmax(
  mod: KernelModule,
  x: tf.TensorInfo,
  bias: tf.TensorInfo | null,
  mask: tf.TensorInfo | null,
  n: number,
  heads: number,
  nW: number,
): tf.TensorInfo {
  const out = mod.backend.makeOutput(x.shape, 'float32');
  const total = prod(x.shape);
  const m = x.shape[x.shape.length - 1];
  if (total === 0) return out;
  const rows = total / m;
  const base = [mod.offset(x), bias ? mod.offset(bias) : 0, mask ? mod.offset(mask) : 0, mod.offset(out), m, n, heads, nW];
  mod.run(
    'biasMaskSoftmax',
    splitRange(rows, threadsFor(mod, total * WORK_PER_ELEMENT)).map(([r0, r1]) => [...base, r0, r1]),
  );
  return out;
}

/** `Softmax` (float32, over the last axis; anything else goes to `previous`). */
export function makeSoftmax(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { logits } = args.inputs as { logits: tf.TensorInfo };
    const { dim } = args.attrs as { dim: number };
    const rank = logits.shape.length;
    const mod = kernelModuleFor(args.backend);
    if (!mod || logits.dtype !== 'float32' || rank === 0 || (dim !== -1 && dim !== rank - 1)) return previous(args);
    return runSoftmax(mod, logits, null, null, 1, 1, 1);
  };
}

/**
 * `VisBackbonesBiasMaskSoftmax`: `softmax(x + (bias + mask))` over the last axis of attention logits
 * `x` `[G, N, M]`, with `bias` `[heads, N, M]` broadcast over `G = B * nW * heads` as `g % heads` and
 * `mask` `[nW, N, M]` as `(g / heads) % nW` (either input may be absent); attrs `heads`, `windows` (nW).
 */
export function biasMaskSoftmaxKernel(args: KernelArgs): KernelResult {
  const { x, bias, mask } = args.inputs as { x: tf.TensorInfo; bias?: tf.TensorInfo; mask?: tf.TensorInfo };
  const { heads, windows } = args.attrs as { heads: number; windows: number };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error('VisBackbonesBiasMaskSoftmax: the kernel module could not be instantiated');
  const [g, n, m] = x.shape;
  const fits = (t: tf.TensorInfo | undefined, lead: number) =>
    !t || (t.dtype === 'float32' && t.shape.length === 3 && t.shape[0] === lead && t.shape[1] === n && t.shape[2] === m);
  if (x.dtype !== 'float32' || x.shape.length !== 3 || !fits(bias, heads) || !fits(mask, windows) || g % (heads * windows) !== 0) {
    throw new Error(
      `VisBackbonesBiasMaskSoftmax: unsupported inputs x [${x.shape}], bias [${bias?.shape ?? '-'}], mask [${mask?.shape ?? '-'}], heads ${heads}, windows ${windows}`,
    );
  }
  return runSoftmax(mod, x, bias ?? null, mask ?? null, n, heads, windows);
}

/** `VisBackbonesSoftmaxGrad`: `dx = dy * y - sum(dy * y) * y` over the last axis, one pass per row. */
export function softmaxGradKernel(args: KernelArgs): KernelResult {
  const { y, dy } = args.inputs as { y: tf.TensorInfo; dy: tf.TensorInfo };
  const mod = kernelModuleFor(args.backend);
  if (!mod) throw new Error('VisBackbonesSoftmaxGrad: the kernel module could not be instantiated');
  const out = mod.backend.makeOutput(y.shape, 'float32');
  const total = prod(y.shape);
  if (total === 0) return out;
  const m = y.shape[y.shape.length - 1];
  const base = [mod.offset(y), mod.offset(dy), mod.offset(out), m];
  mod.run(
    'softmaxGrad',
    splitRange(total / m, threadsFor(mod, total * 4)).map(([r0, r1]) => [...base, r0, r1]),
  );
  return out;
}
