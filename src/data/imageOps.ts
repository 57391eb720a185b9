import { check } from '../errors.js';

/** Python's `round` (half to even), which torchvision's centre crop and timm's resize sizes use. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** An 8-bit interleaved image: `[h, w, c]` row-major values in `data`. */
export interface U8Image {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/** Crop `[top, left, h, w]` (inside the image) from an interleaved image. */
export function cropU8(img: U8Image, top: number, left: number, h: number, w: number): U8Image {
  const { data, width, channels: c } = img;
  check(
    top >= 0 && left >= 0 && top + h <= img.height && left + w <= width,
    () => `crop [${top}, ${left}, ${h}, ${w}] outside a ${img.height}x${width} image`,
  );
  const out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) out.set(data.subarray(((top + y) * width + left) * c, ((top + y) * width + left + w) * c), y * w * c);
  return { data: out, height: h, width: w, channels: c };
}

/** Pad by `[left, top, right, bottom]` with a constant per-channel `fill` (torchvision `pad`, mode constant). */
export function padU8(img: U8Image, ltrb: [number, number, number, number], fill: number[]): U8Image {
  const [l, t, r, b] = ltrb;
  const c = img.channels;
  const h = img.height + t + b;
  const w = img.width + l + r;
  const out = new Uint8Array(h * w * c);
  for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) out[i * c + ch] = fill[ch % fill.length];
  for (let y = 0; y < img.height; y++) out.set(img.data.subarray(y * img.width * c, (y + 1) * img.width * c), ((y + t) * w + l) * c);
  return { data: out, height: h, width: w, channels: c };
}

/**
 * torchvision's `center_crop` / timm's `center_crop_or_pad`: pad (constant `fill`) where the crop is
 * larger than the image, then crop at `round((H - h) / 2)`, `round((W - w) / 2)` (half to even).
 */
export function centerCropOrPadU8(img: U8Image, h: number, w: number, fill: number[] = [0]): U8Image {
  let cur = img;
  if (w > cur.width || h > cur.height) {
    const dw = w - cur.width;
    const dh = h - cur.height;
    cur = padU8(
      cur,
      [
        dw > 0 ? Math.floor(dw / 2) : 0,
        dh > 0 ? Math.floor(dh / 2) : 0,
        dw > 0 ? Math.floor((dw + 1) / 2) : 0,
        dh > 0 ? Math.floor((dh + 1) / 2) : 0,
      ],
      fill,
    );
    if (cur.width === w && cur.height === h) return cur;
  }
  const top = Math.trunc(roundHalfEven((cur.height - h) / 2));
  const left = Math.trunc(roundHalfEven((cur.width - w) / 2));
  return cropU8(cur, top, left, h, w);
}

/** Horizontal flip of an interleaved image. */
export function hflipU8(img: U8Image): U8Image {
  const { data, height, width, channels: c } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * c;
      const d = (y * width + (width - 1 - x)) * c;
      for (let ch = 0; ch < c; ch++) out[d + ch] = data[s + ch];
    }
  }
  return { data: out, height, width, channels: c };
}

/**
 * torchvision `ToTensor` + `Normalize` in float32 on an interleaved uint8 image: `x = u / 255`, then
 * `(x - mean) / std`, each step rounded to float32 as torch computes it. Output stays HWC.
 */
export function normalizeU8(img: U8Image, mean: number[], std: number[]): Float32Array {
  const c = img.channels;
  const m = mean.map((v) => Math.fround(v));
  const s = std.map((v) => Math.fround(v));
  const out = new Float32Array(img.data.length);
  const lut: Float32Array[] = [];
  for (let ch = 0; ch < c; ch++) {
    const t = new Float32Array(256);
    for (let u = 0; u < 256; u++) t[u] = Math.fround(Math.fround(Math.fround(u / 255) - m[ch]) / s[ch]);
    lut.push(t);
  }
  for (let i = 0; i < out.length; i++) out[i] = lut[i % c][img.data[i]];
  return out;
}
