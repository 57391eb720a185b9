/**
 * The interface of our WebAssembly kernel module (built from `native/assembly`): its exported kernels
 * with their signatures (byte offsets and sizes), and their names in one list. The main thread calls a
 * kernel by name; the worker pool sends the kernel's index in {@link KERNEL_NAMES}, so both sides (and the
 * module) must agree on this list.
 */

/** The exports of the kernel module (byte offsets and sizes; see `native/assembly/*.ts`). */
export interface KernelExports {
  bmm(...args: number[]): void;
  erf(x: number, y: number, i0: number, i1: number): void;
  gelu(x: number, y: number, i0: number, i1: number): void;
  layerNorm(x: number, w: number, b: number, y: number, c: number, eps: number, r0: number, r1: number): void;
  depthwiseConv(...args: number[]): void;
  depthwiseFilterGrad(...args: number[]): void;
  depthwiseInputGrad(...args: number[]): void;
  convFilterGrad(...args: number[]): void;
  transpose2d(...args: number[]): void;
  gatherRuns(...args: number[]): void;
  geluGrad(x: number, dy: number, dx: number, i0: number, i1: number): void;
  reduceSum(x: number, out: number, r: number, i: number, o0: number, o1: number, i0: number, i1: number, scratch: number): void;
  gatherRows(...args: number[]): void;
  biasMaskSoftmax(
    x: number,
    bias: number,
    mask: number,
    y: number,
    m: number,
    n: number,
    heads: number,
    nW: number,
    r0: number,
    r1: number,
  ): void;
  softmaxGrad(y: number, dy: number, dx: number, m: number, r0: number, r1: number): void;
  binary(...args: number[]): void;
  unary(op: number, x: number, y: number, i0: number, i1: number): void;
  grn(x: number, gamma: number, beta: number, y: number, p: number, c: number, eps: number, scratch: number, b0: number, b1: number): void;
  layerNormGradX(x: number, w: number, dy: number, dx: number, c: number, eps: number, r0: number, r1: number): void;
  layerNormGradW(x: number, dy: number, dw: number, acc: number, c: number, eps: number, rows: number, c0: number, c1: number): void;
}

/** A kernel's name in the module. */
export type KernelName = keyof KernelExports;

/**
 * One entry per kernel of {@link KernelExports}: a record, so the compiler rejects a kernel left out
 * (or one the interface does not declare).
 */
const KERNELS: Record<KernelName, true> = {
  bmm: true,
  erf: true,
  gelu: true,
  layerNorm: true,
  depthwiseConv: true,
  depthwiseFilterGrad: true,
  depthwiseInputGrad: true,
  convFilterGrad: true,
  transpose2d: true,
  gatherRuns: true,
  geluGrad: true,
  reduceSum: true,
  gatherRows: true,
  biasMaskSoftmax: true,
  softmaxGrad: true,
  binary: true,
  unary: true,
  grn: true,
  layerNormGradX: true,
  layerNormGradW: true,
};

/**
 * Every kernel of the module, in the order the worker pool numbers them. `test/backends/kernelAbi.test.ts`
 * checks it against the compiled module's exports.
 */
export const KERNEL_NAMES: readonly KernelName[] = Object.keys(KERNELS) as KernelName[];
