import * as tf from '@tensorflow/tfjs';
import { inflateSync, deflateSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { mergeHeads, splitQkv } from '../../src/layers/attention.js';
import { CosineWindowAttention } from '../../src/layers/cosineWindowAttention.js';
import { roll2d, windowPartition } from '../../src/layers/windows.js';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { colormap, imageGrid } from '../../src/viz/imageGrid.js';
import { pcaToRgb, principalComponents } from '../../src/viz/pca.js';
import { adler32, crc32, encodePng } from '../../src/viz/png.js';
import { windowAttentionMaps } from '../../src/models/swin/windowAttentionMaps.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

/** Bitwise CRC-32, written independently of the table-driven one. */
function crcSlow(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Parse a PNG: chunks with their CRCs checked, IHDR fields, and the inflated scanlines. */
function parsePng(png: Uint8Array) {
  expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: { type: string; data: Uint8Array }[] = [];
  for (let o = 8; o < png.length;) {
    const len = dv.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    expect(dv.getUint32(o + 8 + len), `${type} crc`).toBe(crcSlow(png.subarray(o + 4, o + 8 + len)));
    chunks.push({ type, data });
    o += 12 + len;
  }
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  const ih = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
  return {
    width: ih.getUint32(0),
    height: ih.getUint32(4),
    depth: chunks[0].data[8],
    colorType: chunks[0].data[9],
    raw: new Uint8Array(inflateSync(chunks[1].data)),
  };
}

describe('PNG encoder', () => {
  it('crc32 and adler32 agree with independent computations', () => {
    const b = Uint8Array.from({ length: 70000 }, (_, i) => (i * 31 + (i >> 7)) & 0xff);
    expect(crc32(b)).toBe(crcSlow(b));
    let a = 1;
    let s = 0;
    for (const v of b) {
      a = (a + v) % 65521;
      s = (s + a) % 65521;
    }
    expect(adler32(b)).toBe(((s << 16) | a) >>> 0);
  });

  for (const [label, deflate] of [
    ['stored blocks', undefined],
    ['node zlib', (d: Uint8Array) => new Uint8Array(deflateSync(d))],
  ] as const) {
    for (const channels of [3, 4] as const) {
      it(`${label}, ${channels} channels: the file decodes to the same pixels (several stored blocks)`, () => {
        const w = 173;
        const h = 131; // > 65535 bytes of scanlines: several stored blocks
        const px = Uint8Array.from({ length: w * h * channels }, (_, i) => (i * 7 + (i % 251)) & 0xff);
        const png = parsePng(encodePng(px, w, h, { channels, deflate }));
        expect([png.width, png.height, png.depth, png.colorType]).toEqual([w, h, 8, channels === 4 ? 6 : 2]);
        expect(png.raw.length).toBe(h * (w * channels + 1));
        for (let y = 0; y < h; y++) {
          const row = png.raw.subarray(y * (w * channels + 1), (y + 1) * (w * channels + 1));
          expect(row[0]).toBe(0);
          expect(Buffer.compare(Buffer.from(row.subarray(1)), Buffer.from(px.subarray(y * w * channels, (y + 1) * w * channels)))).toBe(0);
        }
      });
    }
  }

  it('rejects a pixel buffer of the wrong size', () => {
    expect(() => encodePng(new Uint8Array(10), 2, 2, { channels: 3 })).toThrow(
      /pixels has 10 values; expected width\*height\*channels = 2\*2\*3 = 12/,
    );
  });

  it('imageGrid places upscaled cells with padding; colormap spans its range', () => {
    const red = { width: 1, height: 1, data: new Float32Array([1, 0, 0]) };
    const blue = { width: 2, height: 1, data: new Float32Array([0, 0, 1, 0, 0, 0.5]) };
    const g = imageGrid([[red, blue]], { pad: 1, scale: 2, background: [0, 1, 0] });
    expect([g.width, g.height]).toEqual([1 + 2 + 1 + 4 + 1, 1 + 2 + 1]);
    const at = (x: number, y: number) => Array.from(g.pixels.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3));
    expect(at(0, 0)).toEqual([0, 255, 0]);
    expect(at(1, 1)).toEqual([255, 0, 0]);
    expect(at(2, 2)).toEqual([255, 0, 0]);
    expect(at(4, 1)).toEqual([0, 0, 255]);
    expect(at(7, 2)).toEqual([0, 0, 128]);
    const cm = colormap([0, 5, 10], 3, 1);
    expect(Array.from(cm.data.slice(0, 3)).map((v) => +v.toFixed(3))).toEqual([0.267, 0.005, 0.329]);
    expect(Array.from(cm.data.slice(6, 9)).map((v) => +v.toFixed(3))).toEqual([0.993, 0.906, 0.144]);
  });
});

for (const backend of BACKENDS)
  describe(`PCA on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    it('recovers planted directions and their variances', () => {
      // three orthonormal directions in 6-D with standard deviations 5, 2, 0.5 (+ tiny noise)
      const d = 6;
      const dirs = [[1, 1, 0, 0, 0, 0].map((v) => v / Math.SQRT2), [0, 0, 1, -1, 0, 0].map((v) => v / Math.SQRT2), [0, 0, 0, 0, 1, 0]];
      const sds = [5, 2, 0.5];
      const n = 4000;
      let seed = 7;
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
      const rows = new Float32Array(n * d);
      for (let i = 0; i < n; i++)
        for (let c = 0; c < 3; c++) {
          const z = gauss() * sds[c];
          for (let j = 0; j < d; j++) rows[i * d + j] += z * dirs[c][j] + 3;
        }
      const x = tf.tensor2d(rows, [n, d]);
      const { components, variances } = principalComponents(x, 3);
      // direct sample covariance, for the variances along the found directions
      const mean = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += rows[i * d + j] / n;
      components.forEach((v, c) => {
        const dot = v.reduce((s, vi, j) => s + vi * dirs[c][j], 0);
        expect(Math.abs(dot)).toBeGreaterThan(0.999);
        let varAlong = 0;
        for (let i = 0; i < n; i++) {
          let p = 0;
          for (let j = 0; j < d; j++) p += (rows[i * d + j] - mean[j]) * v[j];
          varAlong += (p * p) / (n - 1);
        }
        expect(Math.abs(variances[c] - varAlong) / varAlong).toBeLessThan(1e-3);
      });
      const rgb = pcaToRgb(x.reshape([1, 40, 100, d]));
      expect([rgb.width, rgb.height, rgb.data.length]).toEqual([100, 40, 4000 * 3]);
      expect(Math.min(...rgb.data)).toBe(0);
      expect(Math.max(...rgb.data)).toBe(1);
      x.dispose();
    });
  });

const CASES = [
  { name: 'swin_p4w4_64', build: swin },
  { name: 'swinv2_p4w4_64', build: swinV2 },
] as const;

for (const backend of BACKENDS) {
  describe(`windowAttentionMaps on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const c of CASES) {
      it(`${c.name}: probabilities reproduce the block's attention output, rows sum to 1, masked pairs vanish`, () => {
        const fx = loadFixture(c.name);
        const model = c.build(fx.case.config);
        loadTimmWeights(model, fx.weightsBytes!);
        const x = nchwToNhwc(fx.io.input);
        const before = tf.memory().numTensors;
        const m = windowAttentionMaps(model, x, 0, 1); // stage 0, block 1: shifted windows
        expect(m.shift).toEqual([2, 2]);
        expect(m.window).toEqual([4, 4]);
        expect(m.grid).toEqual([16, 16]);
        expect(m.probs.shape).toEqual([2 * 16, 1, 16, 16]);
        const rowSums = tf.tidy(() => tf.sum(m.probs, -1).dataSync());
        for (const s of rowSums) expect(Math.abs(s - 1)).toBeLessThan(1e-5);
        // the shifted-window mask: windows at the bottom-right mix regions; their masked pairs get ~0
        const blk = model.layers.items[0].blocks.items[1];
        const mask = blk.attnMask!.dataSync();
        const p = m.probs.dataSync();
        let maskedMax = 0;
        for (let b = 0; b < 2; b++)
          for (let w = 0; w < 16; w++)
            for (let i = 0; i < 256; i++) {
              if (mask[w * 256 + i] < 0) maskedMax = Math.max(maskedMax, p[(b * 16 + w) * 256 + i]);
            }
        expect(maskedMax).toBeLessThan(1e-20);
        // probabilities x values, merged and projected == the attention module's own output
        const err = tf.tidy(() => {
          let y = model.patchEmbed.forward(x) as tf.Tensor4D;
          y = model.layers.items[0].blocks.items[0].forward(y);
          const xin = c.name.startsWith('swinv2') ? y : (blk.norm1.forward(y) as tf.Tensor4D);
          const win = windowPartition(roll2d(xin, -2, -2), 4, 4);
          const expected = blk.attn.forward(win, { mask: blk.attnMask });
          const [bw, n, ch] = win.shape;
          let qkv = blk.attn.qkv.forward(win.reshape([bw * n, ch])) as tf.Tensor;
          const a = blk.attn;
          if (a instanceof CosineWindowAttention && a.qBias && a.vBias)
            qkv = tf.add(qkv, tf.concat([a.qBias.value, tf.zeros([ch]), a.vBias.value]));
          const [, , v] = splitQkv(qkv, bw, n, 1);
          const o = mergeHeads(tf.matMul(m.probs.reshape([bw, n, n]), v), bw, 1);
          const got = blk.attn.proj.forward(o.reshape([bw * n, ch])).reshape([bw, n, ch]);
          return tf.max(tf.abs(tf.sub(got, expected))).dataSync()[0];
        });
        console.log(`${c.name} [${backend}] attention maps -> block output max abs err ${err}`);
        expect(err).toBeLessThan(1e-5);
        m.probs.dispose();
        expect(tf.memory().numTensors).toBe(before);
        x.dispose();
        model.dispose();
        fx.dispose();
      });
    }
  });
}
