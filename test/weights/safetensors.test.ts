import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { readSafetensors, readSafetensorsWithMetadata, SafetensorsError, writeSafetensors } from '../../src/weights/safetensors.js';
import { mulberry32 } from '../../src/utils/random.js';
import { loadFixture } from '../helpers/fixtures.js';

/** Build a file by hand from a header object and a data section. */
function build(header: Record<string, unknown>, data: Uint8Array, headerLenOverride?: number): Uint8Array {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setUint32(0, headerLenOverride ?? hb.length, true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

function expectSafetensorsError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a SafetensorsError').toBeInstanceOf(SafetensorsError);
  expect((err as Error).message).toMatch(pattern);
}

describe('safetensors reader/writer', () => {
  it('round-trips float32, int32 and bool tensors with metadata', () => {
    const a = tf.tensor([
      [1.5, -2],
      [3, 4e-8],
    ]);
    const b = tf.tensor([7, -9, 2147483647], [3], 'int32');
    const c = tf.tensor([true, false, true], [3], 'bool');
    const bytes = writeSafetensors({ a, b, c }, { format: 'pt' });
    expect((new DataView(bytes.buffer).getUint32(0, true) + 8) % 8).toBe(0);
    const { tensors, metadata } = readSafetensorsWithMetadata(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    expect(Array.from(tensors.a.dataSync())).toEqual(Array.from(a.dataSync()));
    expect(tensors.a.shape).toEqual([2, 2]);
    expect(Array.from(tensors.b.dataSync())).toEqual([7, -9, 2147483647]);
    expect(Array.from(tensors.c.dataSync())).toEqual([1, 0, 1]);
    tf.dispose([a, b, c, ...Object.values(tensors)]);
  });

  it('decodes F16, BF16 and I64 by their bit patterns', () => {
    // F16: 1.0 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001]).buffer);
    // BF16: upper halves of float32 1.0 (0x3f80), -3.0 (0xc040)
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer);
    const i64 = new Uint8Array(new BigInt64Array([5n, -7n, 2147483647n]).buffer);
    // the I64 tensor starts at data offset 16 so it is 8-byte aligned in the file
    const padded = new Uint8Array(16 + i64.length);
    padded.set(f16, 0);
    padded.set(bf16, 8);
    padded.set(i64, 16);
    const bytes = build(
      {
        h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
        b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
        i: { dtype: 'I64', shape: [3], data_offsets: [16, 40] },
      },
      padded,
    );
    const t = readSafetensors(bytes);
    expect(Array.from(t.h.dataSync())).toEqual([1, -2.5, 65504, 2 ** -24]);
    expect(Array.from(t.b.dataSync())).toEqual([1, -3]);
    expect(t.i.dtype).toBe('int32');
    expect(Array.from(t.i.dataSync())).toEqual([5, -7, 2147483647]);
    tf.dispose(Object.values(t));
  });

  it('raises clear errors for truncated files, bad header lengths, offsets, dtypes and shapes', () => {
    const data = new Uint8Array(16);
    const ok = { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
    expectSafetensorsError(() => readSafetensors(new Uint8Array(5)), /5 bytes, shorter than the 8-byte header length/);
    expectSafetensorsError(() => readSafetensors(build(ok, data, 10_000)), /header length 10000 goes beyond the end of the file/);
    const full = build(ok, data);
    expectSafetensorsError(() => readSafetensors(full.subarray(0, full.length - 3)), /lie outside the data section \(13 bytes\)/);
    expectSafetensorsError(
      () =>
        readSafetensors(
          build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data),
        ),
      /'a' and 'b' have overlapping data_offsets/,
    );
    expectSafetensorsError(
      () => readSafetensors(build({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] } }, data)),
      /outside the data section/,
    );
    expectSafetensorsError(
      () => readSafetensors(build({ a: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, data)),
      /unsupported dtype "Q4"/,
    );
    expectSafetensorsError(
      () => readSafetensors(build({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, data)),
      /has 16 bytes but shape \[3\] of F32 needs 12/,
    );
    expectSafetensorsError(
      () => readSafetensors(build({ a: { dtype: 'F32', shape: [-1, 4], data_offsets: [0, 16] } }, data)),
      /invalid shape/,
    );
    expectSafetensorsError(
      () => readSafetensors(build({ a: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }, data)),
      /start after end/,
    );
    const notJson = build(ok, data);
    notJson[9] = 0x7b; // '{{' breaks JSON
    expectSafetensorsError(() => readSafetensors(notJson), /not valid JSON/);
    const big = new Uint8Array(16);
    new DataView(big.buffer).setUint32(4, 1, true);
    expectSafetensorsError(() => readSafetensors(big), /beyond the 100000000-byte limit/);
  });

  it('fuzz: thousands of mutated fixture checkpoints either read correctly or raise the library error', () => {
    const fx = loadFixture('swin_p4w4_64');
    const orig = fx.weightsBytes!;
    fx.dispose();
    const headerLen = new DataView(orig.buffer, orig.byteOffset).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(orig.subarray(8, 8 + headerLen)));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const dataSection = orig.subarray(8 + headerLen);
    const rnd = mulberry32(1234);
    const pick = <T>(arr: T[]): T => arr[Math.floor(rnd() * arr.length)];
    const counts = { ok: 0, error: 0 };
    const N = 3000;
    for (let it = 0; it < N; it++) {
      let bytes: Uint8Array;
      const kind = it % 6;
      if (kind === 0) {
        bytes = orig.slice(0, Math.floor(rnd() * orig.length));
      } else if (kind === 1) {
        bytes = orig.slice();
        const n = 1 + Math.floor(rnd() * 4);
        for (let j = 0; j < n; j++) bytes[Math.floor(rnd() * (8 + headerLen))] ^= 1 << Math.floor(rnd() * 8);
      } else {
        const h = JSON.parse(JSON.stringify(header));
        const e = h[pick(names)];
        if (kind === 2) e.data_offsets = [Math.floor(rnd() * dataSection.length * 1.1), Math.floor(rnd() * dataSection.length * 1.1)];
        else if (kind === 3) e.data_offsets[1] += pick([-4, -1, 1, 4, 1e9, -1e9]);
        else if (kind === 4) e.dtype = pick(['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'F64', 'X9', '', 7, null]);
        else e.shape = pick([[], [0], [-1], [1.5], 'abc', null, [...e.shape, 2], e.shape.slice(1), [2 ** 40, 2 ** 40]]);
        bytes = build(h, dataSection);
      }
      let tensors: Record<string, tf.Tensor>;
      try {
        tensors = readSafetensors(bytes);
      } catch (err) {
        if (!(err instanceof SafetensorsError) || !(err instanceof VisBackbonesError)) {
          throw new Error(`mutation ${it} (kind ${kind}) raised a foreign error: ${String(err)}`, { cause: err });
        }
        counts.error++;
        continue;
      }
      for (const t of Object.values(tensors)) expect(Number.isFinite(t.size)).toBe(true);
      counts.ok++;
      tf.dispose(Object.values(tensors));
    }
    console.log(`safetensors fuzz: ${counts.ok} read, ${counts.error} rejected with SafetensorsError`);
    expect(counts.ok + counts.error).toBe(N);
    expect(counts.error).toBeGreaterThan(N / 2);
  });
});
