import * as tf from '@tensorflow/tfjs';

/**
 * Convolution backprop kernels that tfjs-wasm 4.22 lacks (`Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropFilter`, `DepthwiseConv2dNativeBackpropInput`), so that models with
 * convolutions train on the wasm backend. They are registered for 'wasm' only, and only where tfjs has
 * no kernel of that name. They compute in JavaScript over the backend's heap (tight loops over typed
 * arrays, float64 accumulation of the filter gradients) and follow `backend_util.computeConv2DInfo`,
 * so strides, dilations, 'valid' / 'same' / explicit padding and `dimRoundingMode` behave as on the cpu
 * backend. (Native SIMD versions may replace them later without changing callers.)
 */

/** The part of the wasm backend these kernels use. */
interface HeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.TypedArray;
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

/** The loop bounds a conv shape implies (NHWC), from tfjs's own shape logic. */
interface Geometry {
  b: number;
  h: number;
  w: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
}

function geometry(info: tf.backend_util.Conv2DInfo): Geometry {
  return {
    b: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    oh: info.outHeight,
    ow: info.outWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    dh: info.dilationHeight,
    dw: info.dilationWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

/**
 * For each kernel row `k` the output rows `o` whose input row `o * s + k * d - pad` lies inside
 * `[0, n)`: `[lo[k], hi[k])`.
 */
function validRange(n: number, outN: number, k: number, s: number, d: number, pad: number): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(k);
  const hi = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const off = i * d - pad; // input row = o * s + off
    lo[i] = Math.min(outN, Math.max(0, Math.ceil(-off / s)));
    hi[i] = Math.max(lo[i], Math.min(outN, Math.floor((n - 1 - off) / s) + 1));
  }
  return { lo, hi };
}

/**
 * The runs of one image's output pixels that a kernel tap reads from inside the map: for each kernel
 * row `i`, output row `oy` and kernel column `j` (in that order), the flat quadruple
 * `[i * kw + j, inPixel, outPixel, count]`: output pixels `outPixel .. outPixel + count - 1` of row `oy`
 * read input pixels `inPixel, inPixel + sw, ...` (pixels row-major within the image). The three
 * gradients below loop over these runs, so they share the geometry (strides, dilations, padding) and
 * differ only in their channel loops.
 */
function tapRuns(g: Geometry): Int32Array {
  const rh = validRange(g.h, g.oh, g.kh, g.sh, g.dh, g.top);
  const rw = validRange(g.w, g.ow, g.kw, g.sw, g.dw, g.left);
  const runs: number[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let oy = rh.lo[i]; oy < rh.hi[i]; oy++) {
      const iy = oy * g.sh + i * g.dh - g.top;
      for (let j = 0; j < g.kw; j++) {
        const count = rw.hi[j] - rw.lo[j];
        if (count === 0) continue;
        const ox = rw.lo[j];
        runs.push(i * g.kw + j, iy * g.w + ox * g.sw + j * g.dw - g.left, oy * g.ow + ox, count);
      }
    }
  }
  return Int32Array.from(runs);
}

/** NCHW -> NHWC copy of a rank-4 array. */
function toChannelsLast(src: tf.TypedArray, b: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(b * h * w * c);
  const hw = h * w;
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      const s0 = (n * c + ch) * hw;
      let d = n * hw * c + ch;
      for (let p = 0; p < hw; p++, d += c) out[d] = src[s0 + p];
    }
  }
  return out;
}

/**
 * `dW[kh, kw, ci, co] = sum_{b, oy, ox} x[b, oy*sh + kh*dh - top, ox*sw + kw*dw - left, ci] dy[b, oy, ox, co]`
 * for a dense convolution, NHWC arrays, accumulated in float64.
 */
function conv2dFilterGrad(x: ArrayLike<number>, dy: ArrayLike<number>, g: Geometry, cin: number, cout: number): Float64Array {
  const acc = new Float64Array(g.kh * g.kw * cin * cout);
  const runs = tapRuns(g);
  const xStep = g.sw * cin;
  for (let n = 0; n < g.b; n++) {
    for (let r = 0; r < runs.length; r += 4) {
      const wOff = runs[r] * cin * cout;
      let xOff = (n * g.h * g.w + runs[r + 1]) * cin;
      let dyOff = (n * g.oh * g.ow + runs[r + 2]) * cout;
      for (let k = runs[r + 3]; k > 0; k--, xOff += xStep, dyOff += cout) {
        for (let ci = 0; ci < cin; ci++) {
          const xv = x[xOff + ci];
          if (xv === 0) continue;
          const o = wOff + ci * cout;
          for (let co = 0; co < cout; co++) acc[o + co] += xv * dy[dyOff + co];
        }
      }
    }
  }
  return acc;
}

/**
 * Depthwise filter gradient, filter `[kh, kw, C, M]`:
 * `dW[kh, kw, c, m] = sum_{b, oy, ox} x[b, iy, ix, c] dy[b, oy, ox, c*M + m]`, accumulated in float64.
 */
function depthwiseFilterGrad(x: ArrayLike<number>, dy: ArrayLike<number>, g: Geometry, c: number, m: number): Float64Array {
  const cm = c * m;
  const acc = new Float64Array(g.kh * g.kw * cm);
  const runs = tapRuns(g);
  const xStep = g.sw * c;
  for (let n = 0; n < g.b; n++) {
    for (let r = 0; r < runs.length; r += 4) {
      const wOff = runs[r] * cm;
      let xOff = (n * g.h * g.w + runs[r + 1]) * c;
      let dyOff = (n * g.oh * g.ow + runs[r + 2]) * cm;
      for (let k = runs[r + 3]; k > 0; k--, xOff += xStep, dyOff += cm) {
        if (m === 1) {
          for (let ch = 0; ch < c; ch++) acc[wOff + ch] += x[xOff + ch] * dy[dyOff + ch];
        } else {
          for (let ch = 0; ch < c; ch++) {
            const xv = x[xOff + ch];
            const o = ch * m;
            for (let q = 0; q < m; q++) acc[wOff + o + q] += xv * dy[dyOff + o + q];
          }
        }
      }
    }
  }
  return acc;
}

/**
 * Depthwise input gradient, written into `dx` (NHWC, zeroed by the caller):
 * `dx[b, iy, ix, c] += sum_m dy[b, oy, ox, c*M + m] w[kh, kw, c, m]` over every tap that reads it.
 */
function depthwiseInputGrad(
  dy: ArrayLike<number>,
  w: ArrayLike<number>,
  dx: Float32Array | Float64Array,
  g: Geometry,
  c: number,
  m: number,
): void {
  const cm = c * m;
  const runs = tapRuns(g);
  const dxStep = g.sw * c;
  for (let n = 0; n < g.b; n++) {
    for (let r = 0; r < runs.length; r += 4) {
      const wOff = runs[r] * cm;
      let dxOff = (n * g.h * g.w + runs[r + 1]) * c;
      let dyOff = (n * g.oh * g.ow + runs[r + 2]) * cm;
      for (let k = runs[r + 3]; k > 0; k--, dxOff += dxStep, dyOff += cm) {
        if (m === 1) {
          for (let ch = 0; ch < c; ch++) dx[dxOff + ch] += dy[dyOff + ch] * w[wOff + ch];
        } else {
          for (let ch = 0; ch < c; ch++) {
            const o = ch * m;
            let s = 0;
            for (let q = 0; q < m; q++) s += dy[dyOff + o + q] * w[wOff + o + q];
            dx[dxOff + ch] += s;
          }
        }
      }
    }
  }
}

function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as HeapBackend;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad as never,
    dimRoundingMode,
    false,
    fmt,
  );
  const g = geometry(info);
  const out = b.makeOutput(filterShape, 'float32');
  // views are taken after the only allocation, so a heap growth cannot detach them
  let xv: ArrayLike<number> = b.typedArrayFromHeap(x);
  let dyv: ArrayLike<number> = b.typedArrayFromHeap(dy);
  if (fmt === 'channelsFirst') {
    xv = toChannelsLast(xv as tf.TypedArray, g.b, info.inChannels, g.h, g.w);
    dyv = toChannelsLast(dyv as tf.TypedArray, g.b, info.outChannels, g.oh, g.ow);
  }
  const acc = conv2dFilterGrad(xv, dyv, g, info.inChannels, info.outChannels);
  (b.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

/** Attributes both depthwise backprop kernels take (besides `filterShape` / `inputShape`). */
interface DepthwiseAttrs {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: Pad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Geometry, channels `c` and channel multiplier `m` of a depthwise convolution, from tfjs's shape logic. */
function depthwiseGeometry(xShape: number[], filterShape: number[], attrs: DepthwiseAttrs): { g: Geometry; c: number; m: number } {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as never,
    attrs.dimRoundingMode,
    true,
  );
  return { g: geometry(info), c: info.inChannels, m: info.outChannels / info.inChannels };
}

function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as HeapBackend;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as DepthwiseAttrs & { filterShape: [number, number, number, number] };
  const { g, c, m } = depthwiseGeometry(x.shape, a.filterShape, a);
  const out = b.makeOutput(a.filterShape, 'float32');
  const acc = depthwiseFilterGrad(b.typedArrayFromHeap(x), b.typedArrayFromHeap(dy), g, c, m);
  (b.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as HeapBackend;
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as DepthwiseAttrs & { inputShape: [number, number, number, number] };
  const { g, c, m } = depthwiseGeometry(a.inputShape, filter.shape, a);
  const out = b.makeOutput(a.inputShape, 'float32');
  const dx = b.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  depthwiseInputGrad(b.typedArrayFromHeap(dy), b.typedArrayFromHeap(filter), dx, g, c, m);
  return out;
}

/** The kernels this file provides, by tfjs kernel name. */
export const CONV_BACKPROP_KERNELS: Record<string, tf.KernelFunc> = {
  Conv2DBackpropFilter: conv2DBackpropFilter as unknown as tf.KernelFunc,
  DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc,
  DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};

/**
 * Register the convolution backprop kernels for the 'wasm' backend, each only where tfjs has none
 * (idempotent). Returns the names registered by this call.
 */
export function registerConvBackpropKernels(): string[] {
  const added: string[] = [];
  for (const [kernelName, kernelFunc] of Object.entries(CONV_BACKPROP_KERNELS)) {
    if (tf.getKernel(kernelName, 'wasm')) continue;
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    added.push(kernelName);
  }
  return added;
}
