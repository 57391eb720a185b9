import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelModule, KernelResult, Previous, kernelModuleFor, prod, splitRange, threadsFor } from './kernelModule.js';

/**
 * Convolution kernels for the wasm backend (`native/assembly/depthwise.ts`, `convFilterGrad.ts`):
 * depthwise forward (SIMD over channels, 4 output columns per filter load) and the gradients tfjs-wasm
 * lacks. Geometry comes from tfjs's `computeConv2DInfo`, so strides, dilations, 'same' / 'valid' /
 * explicit padding and `dimRoundingMode` behave as on the cpu backend. Filter gradients sum per
 * output row in float32 and across rows in float64.
 */
/** Scratch slot of the float64 accumulators (shared by the threads: each writes its own part). */
const ACC_SLOT = 64;
/** Scratch slot of a flipped depthwise filter. */
const FLIP_SLOT = 65;
type ConvAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
};

function geometry(info: tf.backend_util.Conv2DInfo): number[] {
  return [info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left];
}

/** The shape arguments the depthwise kernels take after their three pointers: input, filter, geometry, output. */
function convShapeArgs(info: tf.backend_util.Conv2DInfo): number[] {
  return [
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.filterHeight,
    info.filterWidth,
    ...geometry(info),
    info.outHeight,
    info.outWidth,
  ];
}

/**
 * Run `depthwiseConv` over `rows` output rows (`args`: its pointers and shape arguments), split across the
 * threads, each with a scratch band for the input rows it reads, padded with the zero columns its taps reach
 * (none needed when no tap leaves the image horizontally).
 */
function runDepthwise(mod: KernelModule, args: number[], rows: number, work: number): void {
  const [, , , H, W, C, KH, KW, sh, sw, dh, dw, , pl, , OW] = args;
  const padL = Math.max(0, pl);
  const padR = Math.max(0, (OW - 1) * sw - pl + (KW - 1) * dw + 1 - W);
  const rowBytes = (W + padL + padR) * C * 4;
  mod.run(
    'depthwiseConv',
    splitRange(rows, threadsFor(mod, work)).map(([r0, r1], t) => {
      const band = Math.min(H, (r1 - r0 - 1) * sh + (KH - 1) * dh + 1);
      return [...args, r0, r1, padL || padR ? mod.scratch(band * rowBytes, t) : 0];
    }),
  );
}

/** `DepthwiseConv2dNative` (channel multiplier 1, NHWC). */
export function makeDepthwiseConv2d(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
    const at = args.attrs as ConvAttrs;
    const mod = kernelModuleFor(args.backend);
    if (!mod || x.dtype !== 'float32' || filter.dtype !== 'float32' || filter.shape[3] !== 1 || (at.dataFormat ?? 'NHWC') !== 'NHWC')
      return previous(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      at.strides,
      at.dilations ?? 1,
      at.pad,
      at.dimRoundingMode,
      true,
    );
    const out = mod.backend.makeOutput(info.outShape, 'float32');
    const rows = info.batchSize * info.outHeight;
    if (prod(info.outShape) === 0) return out;
    const base = [mod.offset(x), mod.offset(filter), mod.offset(out), ...convShapeArgs(info)];
    const work = prod(info.outShape) * info.filterHeight * info.filterWidth;
    runDepthwise(mod, base, rows, work);
    return out;
  };
}

/** `DepthwiseConv2dNativeBackpropFilter` (channel multiplier 1). */
export function makeDepthwiseFilterGrad(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const at = args.attrs as ConvAttrs;
    const mod = kernelModuleFor(args.backend);
    const fs = at.filterShape!;
    if (!mod || x.dtype !== 'float32' || dy.dtype !== 'float32' || fs[3] !== 1) return previous(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      fs,
      at.strides,
      at.dilations ?? 1,
      at.pad,
      at.dimRoundingMode,
      true,
    );
    const out = mod.backend.makeOutput(fs, 'float32');
    const c = info.inChannels;
    if (prod(fs) === 0) return out;
    const acc = mod.scratch(fs[0] * fs[1] * c * 8, ACC_SLOT);
    const base = [
      mod.offset(x),
      mod.offset(dy),
      mod.offset(out),
      acc,
      info.batchSize,
      info.inHeight,
      info.inWidth,
      c,
      info.filterHeight,
      info.filterWidth,
      ...geometry(info),
      info.outHeight,
      info.outWidth,
    ];
    const work = prod(info.outShape) * info.filterHeight * info.filterWidth;
    mod.run(
      'depthwiseFilterGrad',
      splitRange(c, threadsFor(mod, work), 4).map(([c0, c1]) => [...base, c0, c1]),
    );
    return out;
  };
}

/**
 * `DepthwiseConv2dNativeBackpropInput` (channel multiplier 1): for stride 1 the forward kernel on
 * the flipped filter, otherwise a gather over the taps that reach each input pixel.
 */
export function makeDepthwiseInputGrad(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const at = args.attrs as ConvAttrs;
    const mod = kernelModuleFor(args.backend);
    const xs = at.inputShape!;
    if (!mod || dy.dtype !== 'float32' || filter.dtype !== 'float32' || filter.shape[3] !== 1) return previous(args);
    const info = tf.backend_util.computeConv2DInfo(
      xs,
      filter.shape as [number, number, number, number],
      at.strides,
      at.dilations ?? 1,
      at.pad,
      at.dimRoundingMode,
      true,
    );
    const out = mod.backend.makeOutput(xs, 'float32');
    if (prod(xs) === 0) return out;
    const work = prod(xs) * info.filterHeight * info.filterWidth;
    const [kh, kw, c] = [info.filterHeight, info.filterWidth, info.inChannels];
    const ptFlip = (kh - 1) * info.dilationHeight - info.padInfo.top;
    const plFlip = (kw - 1) * info.dilationWidth - info.padInfo.left;
    if (info.strideHeight === 1 && info.strideWidth === 1 && ptFlip >= 0 && plFlip >= 0) {
      // stride 1: dx is the forward convolution of dy with the flipped filter, padded (k-1)d - p
      const flip = mod.scratch(kh * kw * c * 4, FLIP_SLOT);
      const heap = new Float32Array(mod.memory.buffer);
      const src = mod.offset(filter) >>> 2; // unsigned: the filter may lie past 2 GiB
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const from = src + ((kh - 1 - i) * kw + (kw - 1 - j)) * c;
          heap.copyWithin((flip >>> 2) + (i * kw + j) * c, from, from + c);
        }
      }
      const fwd = [
        mod.offset(dy),
        flip,
        mod.offset(out),
        info.outHeight,
        info.outWidth,
        c,
        kh,
        kw,
        1,
        1,
        info.dilationHeight,
        info.dilationWidth,
        ptFlip,
        plFlip,
        info.inHeight,
        info.inWidth,
      ];
      runDepthwise(mod, fwd, info.batchSize * info.inHeight, work);
      return out;
    }
    const base = [mod.offset(dy), mod.offset(filter), mod.offset(out), ...convShapeArgs(info)];
    const listBytes = 8 * (info.filterHeight + info.filterWidth);
    const jobs = splitRange(info.batchSize * info.inHeight, threadsFor(mod, work)).map(([r0, r1], t) => [
      ...base,
      r0,
      r1,
      mod.scratch(listBytes, t),
    ]);
    mod.run('depthwiseInputGrad', jobs);
    return out;
  };
}

/** `Conv2DBackpropFilter` (NHWC). */
export function makeConv2dFilterGrad(previous: Previous) {
  return (args: KernelArgs): KernelResult => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const at = args.attrs as ConvAttrs;
    const mod = kernelModuleFor(args.backend);
    const fs = at.filterShape!;
    if (!mod || x.dtype !== 'float32' || dy.dtype !== 'float32' || (at.dataFormat ?? 'NHWC') !== 'NHWC') return previous(args);
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      fs,
      at.strides,
      at.dilations ?? 1,
      at.pad,
      at.dimRoundingMode,
      false,
    );
    const out = mod.backend.makeOutput(fs, 'float32');
    if (prod(fs) === 0) return out;
    const [kh, kw, ci, co] = fs;
    const acc = mod.scratch(kh * kw * ci * co * 8, ACC_SLOT);
    const base = [
      mod.offset(x),
      mod.offset(dy),
      mod.offset(out),
      acc,
      mod.zero(),
      info.batchSize,
      info.inHeight,
      info.inWidth,
      ci,
      info.outHeight,
      info.outWidth,
      co,
      kh,
      kw,
      ...geometry(info),
    ];
    const tasks = kh * kw * Math.ceil(ci / 4);
    const work = prod(info.outShape) * kh * kw * ci;
    mod.run(
      'convFilterGrad',
      splitRange(tasks, Math.min(tasks, threadsFor(mod, work))).map(([t0, t1]) => [...base, t0, t1]),
    );
    return out;
  };
}
