/**
 * Runs every research notebook in docs/notebooks on its tiny configuration, on both backends, and
 * checks the figures they write (valid PNG files of the expected sizes) and the numbers they report.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as runCpb } from '../../docs/notebooks/cpbAcrossWindows.js';
import { run as runHog } from '../../docs/notebooks/hogTargets.js';
import { run as runAttention } from '../../docs/notebooks/shiftedWindowAttention.js';
import { run as runSimmim } from '../../docs/notebooks/simmimMasks.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

const NOTEBOOK_DIR = join(__dirname, '..', '..', 'docs', 'notebooks');

/** Width and height of a PNG file, after checking its signature and that its image data inflates to the right size. */
function pngSize(path: string): [number, number] {
  const b = readFileSync(path);
  expect(Array.from(b.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(b.toString('latin1', 12, 16)).toBe('IHDR');
  const w = b.readUInt32BE(16);
  const h = b.readUInt32BE(20);
  const idatLen = b.readUInt32BE(33);
  expect(b.toString('latin1', 37, 41)).toBe('IDAT');
  const raw = inflateSync(b.subarray(41, 41 + idatLen));
  expect(raw.length).toBe(h * (w * 3 + 1));
  return [w, h];
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vb-notebooks-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('docs/notebooks', () => {
  it('every notebook file is covered by this test', () => {
    const files = readdirSync(NOTEBOOK_DIR)
      .filter((f) => f.endsWith('.ts') && f !== 'lib.ts')
      .sort();
    expect(files).toEqual(['cpbAcrossWindows.ts', 'hogTargets.ts', 'shiftedWindowAttention.ts', 'simmimMasks.ts']);
  });
});

for (const backend of BACKENDS) {
  describe(`notebooks on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('shifted-window attention: figures written, rows sum to 1, no weight across mask regions', async () => {
      const before = tf.memory().numTensors;
      const r = await runAttention({ out: join(tmp, backend) });
      expect(tf.memory().numTensors).toBe(before);
      expect(pngSize(r.figures[0])[0]).toBeGreaterThan(3 * 3 * 64);
      expect(pngSize(r.figures[1])[0]).toBeGreaterThan(4 * 3 * 64);
      expect([r.window, r.shift]).toEqual([4, 2]);
      expect(r.rowSumErr).toBeLessThan(1e-5);
      expect(r.crossRegionWeight).toBeLessThan(1e-6);
    });

    it('CPB across windows: the written-out eq. 3-4 equals the modules built for each window', async () => {
      const before = tf.memory().numTensors;
      const r = await runCpb({ out: join(tmp, backend) });
      expect(tf.memory().numTensors).toBe(before);
      pngSize(r.figures[0]);
      expect(r.windows.map((w) => w.window)).toEqual([4, 8, 12, 16]);
      for (const w of r.windows) {
        expect(w.moduleMaxAbsDiff).toBeLessThan(1e-5);
        expect(w.min).toBeGreaterThan(0);
        expect(w.max).toBeLessThan(16);
      }
      expect(r.ownWindowMaxAbsDiff).toBeLessThan(1e-5);
    });

    it('HOG targets: shape and agreement with the loop implementation (HOG fixture tolerance 1e-4)', async () => {
      const before = tf.memory().numTensors;
      const r = await runHog({ out: join(tmp, backend) });
      expect(tf.memory().numTensors).toBe(before);
      pngSize(r.figures[0]);
      expect(r.shape).toEqual([4, 8, 8, 27]);
      console.log(`hog notebook [${backend}] loops max abs diff ${r.loopsMaxAbsDiff}`);
      expect(r.loopsMaxAbsDiff).toBeLessThan(1e-4);
    });

    it('SimMIM masks and reconstructions: exact block counts; the held-out loss falls with training', async () => {
      const before = tf.memory().numTensors;
      const r = await runSimmim({ out: join(tmp, backend), ...(backend === 'cpu' ? { steps: 12, batchSize: 8 } : { steps: 60 }) });
      expect(tf.memory().numTensors).toBe(before);
      pngSize(r.figures[0]);
      pngSize(r.figures[1]);
      for (const m of r.masks) expect(m.masked).toEqual([m.blocks, m.blocks, m.blocks, m.blocks]);
      console.log(`simmim notebook [${backend}] held-out loss ${r.heldOutLoss.before} -> ${r.heldOutLoss.after} in ${r.steps} steps`);
      expect(r.heldOutLoss.after).toBeLessThan(0.9 * r.heldOutLoss.before);
    });
  });
}
