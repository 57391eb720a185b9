import { check } from '../errors.js';

/**
 * Resampling filters of Pillow's `Image.resize` (`libImaging/Resample.c`, Pillow 9.4): the kernel and
 * its support at scale 1. Bicubic uses `a = -0.5` (not the -0.75 of OpenCV / PyTorch).
 */
const FILTERS: Record<string, { support: number; fn: (x: number) => number }> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: { support: 1, fn: (x) => ((x < 0 ? -x : x) < 1 ? 1 - (x < 0 ? -x : x) : 0) },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = x < 0 ? -x : x;
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (0.54 + 0.46 * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = x < 0 ? -x : x;
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    fn: (x) => {
      const sinc = (v: number) => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v));
      return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  },
};

/** Resampling filters {@link pilResize} accepts (PIL's names, as timm's `interpolation` strings). */
export const PIL_FILTERS = ['nearest', 'box', 'bilinear', 'hamming', 'bicubic', 'lanczos'] as const;
export type PilFilter = (typeof PIL_FILTERS)[number];

/** Fixed-point precision of Pillow's 8-bit resampler (`PRECISION_BITS = 32 - 8 - 2`). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/**
 * One pass of Pillow's resampler: for output index `i`, the taps start at input `bounds[2i]`, there are
 * `bounds[2i + 1]` of them, and their 22-bit fixed-point weights are `kk[i * ksize ..]`.
 */
export interface PilResizeCoeffs {
  bounds: Int32Array;
  ksize: number;
  kk: Int32Array;
}
type Coeffs = PilResizeCoeffs;

/**
 * The taps and fixed-point weights of one pass of {@link pilResize} from `inSize` to `outSize` (Pillow's
 * `precompute_coeffs` + `normalize_coeffs_8bpc`): output = clip8(2^21 + sum(input * kk)) >> 22.
 */
export function pilResizeCoeffs(inSize: number, outSize: number, filter: Exclude<PilFilter, 'nearest'>): PilResizeCoeffs {
  check(Object.prototype.hasOwnProperty.call(FILTERS, filter), () => `pilResizeCoeffs: unknown filter '${filter}'`);
  return precomputeCoeffs(inSize, outSize, FILTERS[filter]);
}

function precomputeCoeffs(inSize: number, outSize: number, filter: { support: number; fn: (x: number) => number }): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let ww = 0;
    // C's (int) cast truncates toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (let x = 0; x < xmax; x++) {
      const v = filter.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, ksize, kk };
}

/** Pillow's `clip8`: fixed-point accumulator -> uint8. */
function clip8(v: number): number {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  const u = Math.floor(v / ONE);
  return u > 255 ? 255 : u;
}

function horizontal(src: Uint8Array, h: number, w: number, c: number, outW: number, co: Coeffs, y0: number, y1: number): Uint8Array {
  const out = new Uint8Array((y1 - y0) * outW * c);
  const { bounds, ksize, kk } = co;
  for (let y = y0; y < y1; y++) {
    const rowIn = y * w * c;
    const rowOut = (y - y0) * outW * c;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const k = xx * ksize;
      for (let ch = 0; ch < c; ch++) {
        let ss = HALF;
        for (let x = 0; x < xmax; x++) ss += src[rowIn + (x + xmin) * c + ch] * kk[k + x];
        out[rowOut + xx * c + ch] = clip8(ss);
      }
    }
  }
  return out;
}

function vertical(src: Uint8Array, w: number, c: number, outH: number, co: Coeffs, yShift: number): Uint8Array {
  const out = new Uint8Array(outH * w * c);
  const { bounds, ksize, kk } = co;
  const rowLen = w * c;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - yShift;
    const ymax = bounds[yy * 2 + 1];
    const k = yy * ksize;
    for (let i = 0; i < rowLen; i++) {
      let ss = HALF;
      for (let y = 0; y < ymax; y++) ss += src[(y + ymin) * rowLen + i] * kk[k + y];
      out[yy * rowLen + i] = clip8(ss);
    }
  }
  return out;
}

function nearest(src: Uint8Array, h: number, w: number, c: number, outH: number, outW: number): Uint8Array {
  const out = new Uint8Array(outH * outW * c);
  const sy = h / outH;
  const sx = w / outW;
  for (let y = 0; y < outH; y++) {
    const iy = Math.min(h - 1, Math.trunc((y + 0.5) * sy));
    for (let x = 0; x < outW; x++) {
      const ix = Math.min(w - 1, Math.trunc((x + 0.5) * sx));
      for (let ch = 0; ch < c; ch++) out[(y * outW + x) * c + ch] = src[(iy * w + ix) * c + ch];
    }
  }
  return out;
}

/**
 * Pillow's `Image.resize((outW, outH), filter)` of an 8-bit `[h, w, c]` image, bit for bit (Pillow 9.4
 * `libImaging/Resample.c`): a separable convolution whose support widens by the down-scale factor
 * (antialiasing), weights normalised in double then quantised to 22-bit fixed point, the HORIZONTAL
 * pass first into a rounded, clamped uint8 image, then the vertical pass; a pass whose size does not
 * change is skipped. `nearest` is Pillow's nearest-neighbour sampling at pixel centres.
 */
export function pilResize(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  filter: PilFilter = 'bicubic',
): Uint8Array {
  check(src.length === h * w * c, () => `pilResize: ${src.length} values for a [${h}, ${w}, ${c}] image`);
  check(
    Number.isInteger(outH) && Number.isInteger(outW) && outH > 0 && outW > 0,
    () => `pilResize: output size ${outH}x${outW} must be positive integers`,
  );
  check(
    (PIL_FILTERS as readonly string[]).includes(filter),
    () => `pilResize: unknown filter '${filter}' (expected one of ${PIL_FILTERS.join(', ')})`,
  );
  if (outH === h && outW === w) return src.slice();
  if (filter === 'nearest') return nearest(src, h, w, c, outH, outW);
  const f = FILTERS[filter];
  const needH = outW !== w;
  const needV = outH !== h;
  const cv = precomputeCoeffs(h, outH, f);
  let cur = src;
  let shift = 0;
  if (needH) {
    const ch = precomputeCoeffs(w, outW, f);
    // only the rows the vertical pass reads (Pillow's ybox_first .. ybox_last)
    const y0 = needV ? cv.bounds[0] : 0;
    const y1 = needV ? cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1] : h;
    cur = horizontal(src, h, w, c, outW, ch, y0, y1);
    shift = y0;
  }
  if (needV) cur = vertical(cur, needH ? outW : w, c, outH, cv, shift);
  return cur;
}
