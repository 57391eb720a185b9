import { check } from '../../errors.js';

/** Canonical Huffman decoding table: symbols ordered by code, and the count of codes of each length. */
interface Huffman {
  counts: Uint16Array;
  symbols: Uint16Array;
}

function buildHuffman(lengths: ArrayLike<number>): Huffman {
  const counts = new Uint16Array(16);
  for (let i = 0; i < lengths.length; i++) counts[lengths[i]]++;
  counts[0] = 0;
  const offs = new Uint16Array(16);
  for (let i = 1; i < 16; i++) offs[i] = offs[i - 1] + counts[i - 1];
  const symbols = new Uint16Array(lengths.length);
  for (let i = 0; i < lengths.length; i++) if (lengths[i]) symbols[offs[lengths[i]]++] = i;
  return { counts, symbols };
}

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385,
  24577,
];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/** Raw DEFLATE decoder (RFC 1951): stored, fixed-Huffman and dynamic-Huffman blocks. */
function inflate(src: Uint8Array, start: number): Uint8Array {
  let pos = start;
  let bitBuf = 0;
  let bitCnt = 0;
  let out = new Uint8Array(Math.max(1024, src.length * 4));
  let n = 0;
  const need = (k: number) => {
    if (n + k > out.length) {
      const grown = new Uint8Array(Math.max(out.length * 2, n + k));
      grown.set(out.subarray(0, n));
      out = grown;
    }
  };
  const bits = (k: number): number => {
    while (bitCnt < k) {
      check(pos < src.length, () => 'gzip data is truncated');
      bitBuf |= src[pos++] << bitCnt;
      bitCnt += 8;
    }
    const v = bitBuf & ((1 << k) - 1);
    bitBuf >>>= k;
    bitCnt -= k;
    return v;
  };
  const decode = (h: Huffman): number => {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len < 16; len++) {
      code |= bits(1);
      const count = h.counts[len];
      if (code - count < first) return h.symbols[index + (code - first)];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new Error('invalid Huffman code in gzip data');
  };
  let final = 0;
  while (!final) {
    final = bits(1);
    const type = bits(2);
    if (type === 0) {
      bitBuf = 0;
      bitCnt = 0;
      const len = src[pos] | (src[pos + 1] << 8);
      pos += 4;
      check(pos + len <= src.length, () => 'gzip stored block is truncated');
      need(len);
      out.set(src.subarray(pos, pos + len), n);
      n += len;
      pos += len;
      continue;
    }
    check(type !== 3, () => 'invalid DEFLATE block type in gzip data');
    let lit: Huffman;
    let dist: Huffman;
    if (type === 1) {
      const l = new Uint8Array(288);
      l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
      lit = buildHuffman(l);
      dist = buildHuffman(new Uint8Array(30).fill(5));
    } else {
      const hlit = bits(5) + 257;
      const hdist = bits(5) + 1;
      const hclen = bits(4) + 4;
      const cl = new Uint8Array(19);
      for (let i = 0; i < hclen; i++) cl[CL_ORDER[i]] = bits(3);
      const clh = buildHuffman(cl);
      const lens = new Uint8Array(hlit + hdist);
      for (let i = 0; i < hlit + hdist;) {
        const sym = decode(clh);
        if (sym < 16) lens[i++] = sym;
        else {
          const [rep, prev] = sym === 16 ? [3 + bits(2), lens[i - 1]] : sym === 17 ? [3 + bits(3), 0] : [11 + bits(7), 0];
          lens.fill(prev, i, i + rep);
          i += rep;
        }
      }
      lit = buildHuffman(lens.subarray(0, hlit));
      dist = buildHuffman(lens.subarray(hlit));
    }
    for (;;) {
      const sym = decode(lit);
      if (sym < 256) {
        need(1);
        out[n++] = sym;
      } else if (sym === 256) break;
      else {
        const li = sym - 257;
        const len = LEN_BASE[li] + bits(LEN_EXTRA[li]);
        const di = decode(dist);
        const d = DIST_BASE[di] + bits(DIST_EXTRA[di]);
        check(d <= n, () => 'invalid back-reference in gzip data');
        need(len);
        for (let k = 0; k < len; k++, n++) out[n] = out[n - d];
      }
    }
  }
  return out.subarray(0, n);
}

/** Decompress a gzip file (RFC 1952, one member). Uses Node's zlib where available, else a built-in inflater. */
export function gunzip(bytes: Uint8Array): Uint8Array {
  check(bytes.length > 18 && bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 8, () => 'not a gzip (deflate) file');
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const zlib = getBuiltin ? (getBuiltin('node:zlib') as { gunzipSync?: (b: Uint8Array) => Uint8Array } | undefined) : undefined;
  if (zlib?.gunzipSync) return new Uint8Array(zlib.gunzipSync(bytes));
  return gunzipPortable(bytes);
}

/** The built-in inflater on its own (for tests of the no-zlib path): a gzip file's decompressed bytes. */
export function gunzipPortable(bytes: Uint8Array): Uint8Array {
  check(bytes.length > 18 && bytes[0] === 0x1f && bytes[1] === 0x8b && bytes[2] === 8, () => 'not a gzip (deflate) file');
  const flags = bytes[3];
  let pos = 10;
  if (flags & 4) pos += 2 + (bytes[pos] | (bytes[pos + 1] << 8));
  if (flags & 8) while (bytes[pos++] !== 0);
  if (flags & 16) while (bytes[pos++] !== 0);
  if (flags & 2) pos += 2;
  return inflate(bytes, pos);
}
