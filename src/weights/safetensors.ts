import * as tf from '@tensorflow/tfjs';
import { VisBackbonesError } from '../errors.js';
import { isInt64, markInt64 } from '../layers/module.js';

/** Raised for a malformed or unsupported safetensors file; the message names the problem. */
export class SafetensorsError extends VisBackbonesError {
  constructor(message: string) {
    super(`safetensors: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** Element sizes of the dtypes this reader understands. */
const DTYPE_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
/** Largest header accepted (the reference implementation's limit). */
const MAX_HEADER = 100_000_000;

/** One tensor's entry in a safetensors header. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

/** A parsed and validated safetensors header. */
export interface SafetensorsHeader {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** File offset of the data section (8 + header length). */
  dataStart: number;
}

function fail(msg: string): never {
  throw new SafetensorsError(msg);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parse and validate the header of a safetensors file without trusting any length in it: the
 * header length is checked against the file size before it is read, every entry's dtype, shape and
 * offsets are checked, offsets must lie inside the data section, match `prod(shape) * dtype size`,
 * and not overlap.
 */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array)) fail(`expected the file as a Uint8Array, got ${Object.prototype.toString.call(bytes)}`);
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    fail(
      'this is a zip file, i.e. a PyTorch checkpoint (torch.save, .pth / .pt / .bin), not safetensors: convert it with ' +
        `python -c "import torch; from safetensors.torch import save_file; save_file(torch.load('x.pth', map_location='cpu'), 'x.safetensors')" ` +
        "(for a checkpoint that nests the weights, save_file(torch.load(...)['model'], ...))",
    );
  }
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length field (truncated?)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (hi !== 0 || headerLen > MAX_HEADER) fail(`header length ${headerLen} is beyond the ${MAX_HEADER}-byte limit`);
  if (headerLen > bytes.length - 8)
    fail(`header length ${headerLen} goes beyond the end of the file (${bytes.length} bytes): truncated or corrupt`);
  if (headerLen < 2) fail(`header length ${headerLen} is too short for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors: Record<string, SafetensorsEntry> = {};
  let metadata: Record<string, string> = {};
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value of '${k}' is not a string`);
      }
      metadata = { ...(raw as Record<string, string>) };
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`entry '${name}' is not an object`);
    const e = raw as Record<string, unknown>;
    const dtype = e.dtype;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE))
      fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every(isIndex))
      fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)} (expected an array of non-negative integers)`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isIndex(offs[0]) || !isIndex(offs[1]))
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [start, end] = offs as [number, number];
    if (start > end) fail(`tensor '${name}' has data_offsets [${start}, ${end}] with start after end`);
    if (end > dataLen)
      fail(`tensor '${name}' data_offsets [${start}, ${end}] lie outside the data section (${dataLen} bytes): truncated or corrupt`);
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const expected = numel * DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - start) {
      fail(`tensor '${name}' has ${end - start} bytes but shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected}`);
    }
    tensors[name] = { dtype, shape: (shape as number[]).slice(), dataOffsets: [start, end] };
    if (end > start) spans.push([start, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    const [s, , n] = spans[i];
    const [, pe, pn] = spans[i - 1];
    if (s < pe) fail(`tensors '${pn}' and '${n}' have overlapping data_offsets`);
  }
  return { tensors, metadata, dataStart };
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Decode one entry's bytes into values tfjs can hold (float32, int32 or bool). */
function decode(
  bytes: Uint8Array,
  start: number,
  entry: SafetensorsEntry,
  name: string,
): { values: Float32Array | Int32Array | Uint8Array; dtype: 'float32' | 'int32' | 'bool' } {
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + start, entry.dataOffsets[1] - entry.dataOffsets[0]);
  switch (entry.dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      return { values: out, dtype: 'float32' };
    }
    case 'F64': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      return { values: out, dtype: 'float32' };
    }
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
      return { values: out, dtype: 'float32' };
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(i * 2, true) << 16;
      return { values: out, dtype: 'float32' };
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(i * 8, true);
        if (v > 2147483647n || v < -2147483648n) fail(`tensor '${name}' (I64) holds ${v}, outside the int32 range tfjs supports`);
        out[i] = Number(v);
      }
      return { values: out, dtype: 'int32' };
    }
    case 'I32': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      return { values: out, dtype: 'int32' };
    }
    case 'I16': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      return { values: out, dtype: 'int32' };
    }
    case 'I8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return { values: out, dtype: 'int32' };
    }
    case 'U8': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      return { values: out, dtype: 'int32' };
    }
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i) ? 1 : 0;
      return { values: out, dtype: 'bool' };
    }
    default:
      fail(`tensor '${name}' has unsupported dtype ${entry.dtype}`);
  }
}

/**
 * Read a safetensors file into tensors keyed by name. F32/F64/F16/BF16 become float32, integer
 * types int32 (I64 values must fit), BOOL bool. Any malformed input raises {@link SafetensorsError}.
 */
export function readSafetensors(bytes: Uint8Array): Record<string, tf.Tensor> {
  return readSafetensorsWithMetadata(bytes).tensors;
}

/** {@link readSafetensors} plus the file's `__metadata__`. */
export function readSafetensorsWithMetadata(bytes: Uint8Array): { tensors: Record<string, tf.Tensor>; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(bytes);
  const decoded: [string, ReturnType<typeof decode>, number[]][] = [];
  for (const [name, e] of Object.entries(header.tensors))
    decoded.push([name, decode(bytes, header.dataStart + e.dataOffsets[0], e, name), e.shape]);
  const tensors: Record<string, tf.Tensor> = {};
  for (const [name, d, shape] of decoded) {
    const t = tf.tensor(d.values, shape, d.dtype);
    tensors[name] = header.tensors[name].dtype === 'I64' ? markInt64(t) : t;
  }
  return { tensors, metadata: header.metadata };
}

/**
 * Write tensors as a safetensors file (float32 -> F32, int32 -> I32 or I64 where {@link markInt64} marked it (the
 * reference's int64 buffers, and tensors read from I64), bool -> BOOL), keys sorted,
 * header padded with spaces to a multiple of 8 so every tensor is aligned.
 */
export function writeSafetensors(tensors: Record<string, tf.Tensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string') throw new SafetensorsError(`metadata value of '${k}' is not a string`);
    header.__metadata__ = metadata;
  }
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    const t = tensors[name];
    let dtype: string;
    let data: Uint8Array;
    if (t.dtype === 'float32') {
      dtype = 'F32';
      const v = t.dataSync() as Float32Array;
      data = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    } else if (t.dtype === 'int32' && isInt64(t)) {
      dtype = 'I64';
      const v = t.dataSync() as Int32Array;
      const wide = new BigInt64Array(v.length);
      for (let i = 0; i < v.length; i++) wide[i] = BigInt(v[i]);
      data = new Uint8Array(wide.buffer);
    } else if (t.dtype === 'int32') {
      dtype = 'I32';
      const v = t.dataSync() as Int32Array;
      data = new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
    } else if (t.dtype === 'bool') {
      dtype = 'BOOL';
      data = Uint8Array.from(t.dataSync() as Uint8Array);
    } else {
      throw new SafetensorsError(`tensor '${name}' has dtype ${t.dtype}, which cannot be written`);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
    parts.push(data);
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.length % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.length + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, hb.length, true);
  dv.setUint32(4, 0, true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
