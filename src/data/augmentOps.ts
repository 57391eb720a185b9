import type { U8Image } from './imageOps.js';

/** Pillow's RGB -> L (ITU-R 601-2 luma, fixed point: `(R*19595 + G*38470 + B*7471 + 0x8000) >> 16`). */
export function lumaU8(img: U8Image): Uint8Array {
  const n = img.height * img.width;
  const out = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = (d[i * 3] * 19595 + d[i * 3 + 1] * 38470 + d[i * 3 + 2] * 7471 + 0x8000) >> 16;
  return out;
}

/** Pillow's `Image.blend(degenerate, img, factor)`: `deg + factor * (img - deg)`, truncated and clipped to uint8. */
function blend(img: U8Image, degenerate: (i: number, ch: number) => number, factor: number): U8Image {
  const out = new Uint8Array(img.data.length);
  const c = img.channels;
  for (let i = 0; i < out.length; i++) {
    const a = degenerate(Math.floor(i / c), i % c);
    const t = Math.fround(a + factor * (img.data[i] - a));
    out[i] = t <= 0 ? 0 : t >= 255 ? 255 : Math.trunc(t);
  }
  return { ...img, data: out };
}

/** `ImageEnhance.Brightness(img).enhance(f)`. */
export function brightness(img: U8Image, f: number): U8Image {
  return blend(img, () => 0, f);
}

/** `ImageEnhance.Contrast(img).enhance(f)`: blend with the mean luma. */
export function contrast(img: U8Image, f: number): U8Image {
  const l = lumaU8(img);
  let s = 0;
  for (let i = 0; i < l.length; i++) s += l[i];
  const mean = Math.trunc(s / l.length + 0.5);
  return blend(img, () => mean, f);
}

/** `ImageEnhance.Color(img).enhance(f)` (saturation): blend with the greyscale image. */
export function saturation(img: U8Image, f: number): U8Image {
  const l = lumaU8(img);
  return blend(img, (p) => l[p], f);
}

/** `ImageEnhance.Sharpness(img).enhance(f)`: blend with Pillow's SMOOTH filter (border pixels unfiltered). */
export function sharpness(img: U8Image, f: number): U8Image {
  const { data, height: h, width: w, channels: c } = img;
  const smooth = new Uint8Array(data);
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) s += data[((y + dy) * w + x + dx) * c + ch] * (dx === 0 && dy === 0 ? 5 : 1);
        smooth[(y * w + x) * c + ch] = Math.min(255, Math.max(0, Math.round(s / 13)));
      }
    }
  }
  return blend(img, (p, ch) => smooth[p * c + ch], f);
}

function lut(img: U8Image, table: (v: number, ch: number) => number): U8Image {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = table(img.data[i], i % img.channels);
  return { ...img, data: out };
}

/** `ImageOps.invert`. */
export const invert = (img: U8Image): U8Image => lut(img, (v) => 255 - v);
/** `ImageOps.posterize(img, bits)`. */
export const posterize = (img: U8Image, bits: number): U8Image => {
  const mask = ~(2 ** (8 - Math.max(0, Math.min(8, bits))) - 1) & 255;
  return lut(img, (v) => v & mask);
};
/** `ImageOps.solarize(img, threshold)`. */
export const solarize = (img: U8Image, thresh: number): U8Image => lut(img, (v) => (v >= thresh ? 255 - v : v));
/** timm's `solarize_add`: `min(255, v + add)` below the threshold. */
export const solarizeAdd = (img: U8Image, add: number, thresh = 128): U8Image => lut(img, (v) => (v < thresh ? Math.min(255, v + add) : v));

/** `ImageOps.autocontrast(img)`: stretch each channel's range to 0..255. */
export function autoContrast(img: U8Image): U8Image {
  const c = img.channels;
  const lo = new Array(c).fill(255);
  const hi = new Array(c).fill(0);
  for (let i = 0; i < img.data.length; i++) {
    const ch = i % c;
    lo[ch] = Math.min(lo[ch], img.data[i]);
    hi[ch] = Math.max(hi[ch], img.data[i]);
  }
  return lut(img, (v, ch) => {
    if (hi[ch] <= lo[ch]) return v;
    const scale = 255 / (hi[ch] - lo[ch]);
    return Math.max(0, Math.min(255, Math.trunc(v * scale - lo[ch] * scale)));
  });
}

/** `ImageOps.equalize(img)`: per-channel histogram equalisation. */
export function equalize(img: U8Image): U8Image {
  const c = img.channels;
  const luts: number[][] = [];
  for (let ch = 0; ch < c; ch++) {
    const hist = new Array(256).fill(0);
    for (let i = ch; i < img.data.length; i += c) hist[img.data[i]]++;
    const nz = hist.filter((x) => x > 0);
    const step = nz.length ? Math.floor((nz.reduce((a, b) => a + b, 0) - nz[nz.length - 1]) / 255) : 0;
    if (!step) luts.push(Array.from({ length: 256 }, (_, i) => i));
    else {
      let n = Math.floor(step / 2);
      const t: number[] = [];
      for (let i = 0; i < 256; i++) {
        t.push(Math.min(255, Math.floor(n / step)));
        n += hist[i];
      }
      luts.push(t);
    }
  }
  return lut(img, (v, ch) => luts[ch][v]);
}

/**
 * Pillow's `Image.transform(size, AFFINE, (a, b, c, d, e, f), resample, fillcolor)`: output pixel
 * centre `(x + 0.5, y + 0.5)` samples the input at `(a x + b y + c, d x + e y + f)`; outside -> `fill`.
 */
export function affine(
  img: U8Image,
  m: [number, number, number, number, number, number],
  resample: 'nearest' | 'bilinear' | 'bicubic',
  fill: number[],
): U8Image {
  const { data, height: h, width: w, channels: c } = img;
  const out = new Uint8Array(data.length);
  const [a, b, cc, d, e, f] = m;
  const cub = (t: number) => {
    const x = Math.abs(t);
    const A = -0.5;
    if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
    return 0;
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const xs = a * (x + 0.5) + b * (y + 0.5) + cc;
      const ys = d * (x + 0.5) + e * (y + 0.5) + f;
      const o = (y * w + x) * c;
      if (xs < 0 || ys < 0 || xs >= w || ys >= h) {
        for (let ch = 0; ch < c; ch++) out[o + ch] = fill[ch % fill.length];
        continue;
      }
      if (resample === 'nearest') {
        const i = (Math.floor(ys) * w + Math.floor(xs)) * c;
        for (let ch = 0; ch < c; ch++) out[o + ch] = data[i + ch];
        continue;
      }
      const fx = xs - 0.5;
      const fy = ys - 0.5;
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const r = resample === 'bilinear' ? 1 : 2;
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        let ws = 0;
        for (let j = y0 - r + 1; j <= y0 + r; j++) {
          const wy = r === 1 ? Math.max(0, 1 - Math.abs(fy - j)) : cub(fy - j);
          if (wy === 0) continue;
          const jj = Math.min(h - 1, Math.max(0, j));
          for (let i = x0 - r + 1; i <= x0 + r; i++) {
            const wx = r === 1 ? Math.max(0, 1 - Math.abs(fx - i)) : cub(fx - i);
            if (wx === 0) continue;
            const ii = Math.min(w - 1, Math.max(0, i));
            s += wx * wy * data[(jj * w + ii) * c + ch];
            ws += wx * wy;
          }
        }
        const v = Math.round(ws ? s / ws : 0);
        out[o + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { ...img, data: out };
}

/** Pillow's `img.rotate(degrees, resample, fillcolor=fill)` about the centre (counter-clockwise, same size). */
export function rotate(img: U8Image, degrees: number, resample: 'nearest' | 'bilinear' | 'bicubic', fill: number[]): U8Image {
  const angle = (-degrees * Math.PI) / 180;
  const cx = img.width / 2;
  const cy = img.height / 2;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // inverse map about the centre (Pillow's rotate matrix)
  const m: [number, number, number, number, number, number] = [cos, sin, 0, -sin, cos, 0];
  m[2] = cx - m[0] * cx - m[1] * cy;
  m[5] = cy - m[3] * cx - m[4] * cy;
  return affine(img, m, resample, fill);
}
