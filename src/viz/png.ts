import { check } from '../errors.js';

/**
 * A dependency-free PNG encoder (W3C PNG 2nd ed.: signature, IHDR, IDAT, IEND; colour type 2 or 6,
 * 8 bits per channel, filter type 0 per row). It runs in browsers and Node alike: by default the
 * image data is wrapped in *stored* (uncompressed) deflate blocks (RFC 1950/1951), so no compressor
 * is needed; pass `deflate` (e.g. Node's `zlib.deflateSync`) for smaller files.
 */

/** Options of {@link encodePng}. */
export interface EncodePngOptions {
  /** 3 (RGB) or 4 (RGBA) interleaved channels in `pixels`. Default 4. */
  channels?: 3 | 4;
  /** A zlib (RFC 1950) compressor; default: stored deflate blocks, no compression. */
  deflate?: (data: Uint8Array) => Uint8Array;
}

let crcTable: Uint32Array | null = null;

/** CRC-32 (ISO 3309, polynomial 0xEDB88320) as PNG chunks use it. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Adler-32 checksum (RFC 1950 sec. 9) of `bytes`. */
export function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  const MOD = 65521;
  for (let i = 0; i < bytes.length;) {
    const end = Math.min(i + 5552, bytes.length);
    for (; i < end; i++) {
      a += bytes[i];
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** A zlib stream of stored (uncompressed) deflate blocks (RFC 1951 sec. 3.2.4) holding `data`. */
export function zlibStored(data: Uint8Array): Uint8Array {
  const BLOCK = 65535;
  const nBlocks = Math.max(1, Math.ceil(data.length / BLOCK));
  const out = new Uint8Array(2 + nBlocks * 5 + data.length + 4);
  out[0] = 0x78; // CM = 8 (deflate), CINFO = 7 (32K window)
  out[1] = 0x01; // FCHECK so that (CMF*256 + FLG) % 31 == 0, no dictionary, fastest level
  let o = 2;
  for (let b = 0; b < nBlocks; b++) {
    const start = b * BLOCK;
    const len = Math.min(BLOCK, data.length - start);
    out[o++] = b === nBlocks - 1 ? 1 : 0; // BFINAL, BTYPE = 00
    out[o++] = len & 0xff;
    out[o++] = len >>> 8;
    out[o++] = ~len & 0xff;
    out[o++] = (~len >>> 8) & 0xff;
    out.set(data.subarray(start, start + len), o);
    o += len;
  }
  const ad = adler32(data);
  out[o++] = ad >>> 24;
  out[o++] = (ad >>> 16) & 0xff;
  out[o++] = (ad >>> 8) & 0xff;
  out[o] = ad & 0xff;
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

/**
 * Encode 8-bit interleaved pixels (`width * height * channels` values, row-major, top row first)
 * as a PNG file.
 */
export function encodePng(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, opts: EncodePngOptions = {}): Uint8Array {
  const ch = opts.channels ?? 4;
  check(ch === 3 || ch === 4, () => `channels=${String(ch)}: expected 3 (RGB) or 4 (RGBA)`);
  check(
    Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0,
    () => `image size ${width}x${height}: expected positive integers`,
  );
  check(
    pixels.length === width * height * ch,
    () => `pixels has ${pixels.length} values; expected width*height*channels = ${width}*${height}*${ch} = ${width * height * ch}`,
  );
  const stride = width * ch;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter type None
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = ch === 4 ? 6 : 2; // colour type: RGBA or RGB
  ihdr[10] = 0; // deflate
  ihdr[11] = 0; // adaptive filtering
  ihdr[12] = 0; // no interlace
  const idat = (opts.deflate ?? zlibStored)(raw);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
