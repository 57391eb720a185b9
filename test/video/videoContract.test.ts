/**
 * The video contract (shared/api/video.md) on configs the fixtures do not cover: other patch sizes,
 * windows larger than the clip (clamped), odd clip lengths and sizes (padded), featuresOnly maps and
 * featureInfo reductions, the BEVT token counts, the registry names; cpu and wasm agree on every output.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import { createModel } from '../../src/models/registry.js';
import { bevtSwin, SwinTransformer3D, videoSwin, videoSwinVariant } from '../../src/models/videoSwin/index.js';
import type { VideoSwinConfig } from '../../src/models/videoSwin/index.js';
import { useBackend } from '../helpers/backends.js';
import { maxAbsDiff } from '../helpers/fixtures.js';

type Triple = [number, number, number];
interface Case {
  name: string;
  cfg: VideoSwinConfig;
  /** Clip [T, H, W]. */
  clip: Triple;
}

const CASES: Case[] = [
  {
    name: 'patch 1x4x4, window 3x3x3, T=5',
    cfg: { patchSize: [1, 4, 4], windowSize: [3, 3, 3], depths: [2, 2], numHeads: [1, 2] },
    clip: [5, 24, 24],
  },
  {
    name: 'patch 2x2x2, window 16x7x7 clamped, T=7',
    cfg: { patchSize: [2, 2, 2], windowSize: [16, 7, 7], depths: [2, 2], numHeads: [1, 2] },
    clip: [7, 20, 28],
  },
  {
    name: 'patch 4x4x4, window 1x5x5, T=9, 3 stages',
    cfg: { patchSize: [4, 4, 4], windowSize: [1, 5, 5], depths: [1, 2, 1], numHeads: [1, 2, 2] },
    clip: [9, 36, 44],
  },
  {
    name: 'patch 2x4x4, window 2x2x2, T=3 (a single temporal patch after padding)',
    cfg: { windowSize: [2, 2, 2], depths: [2, 2], numHeads: [1, 1] },
    clip: [3, 16, 16],
  },
];

/** `ceil(n / p)` then halved (rounding up) once per merging. */
function expectedShapes(c: Case): number[][] {
  const [pt, ph, pw] = c.cfg.patchSize ?? [2, 4, 4];
  const d = Math.ceil(c.clip[0] / pt);
  let h = Math.ceil(c.clip[1] / ph);
  let w = Math.ceil(c.clip[2] / pw);
  const out: number[][] = [];
  (c.cfg.depths ?? []).forEach((_, i) => {
    if (i > 0) {
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
    }
    out.push([2, d, h, w, 8 * 2 ** i]);
  });
  return out;
}

describe('video contract on held-out configs', () => {
  const got: Record<string, Record<string, Float32Array>> = { cpu: {}, wasm: {} };
  for (const backend of ['cpu', 'wasm'] as const) {
    it(`Video Swin shapes, featureInfo and featuresOnly maps follow the contract on ${backend}`, async () => {
      await useBackend(backend);
      for (const c of CASES) {
        manualSeed(11);
        const cfg = { ...c.cfg, embedDim: 8, patchNorm: true, dropPathRate: 0 };
        const m = videoSwin(cfg);
        const fo = videoSwin({ ...cfg, featuresOnly: true });
        const sd = m.stateDict();
        fo.loadStateDict(sd);
        const x = tf.randomNormal([2, ...c.clip, 3], 0, 1, 'float32', 12);
        const before = tf.memory().numTensors;
        const y = m.forward(x) as tf.Tensor5D;
        const maps = fo.forward(x) as tf.Tensor5D[];
        const shapes = expectedShapes(c);
        expect(
          maps.map((t) => t.shape),
          c.name,
        ).toEqual(shapes);
        expect(y.shape, c.name).toEqual(shapes[shapes.length - 1]);
        const [pt, ph, pw] = cfg.patchSize ?? [2, 4, 4];
        expect(
          m.featureInfo.map((f) => f.reduction),
          c.name,
        ).toEqual(shapes.map((_, i) => [pt, ph * 2 ** i, pw * 2 ** i]));
        expect(
          m.featureInfo.map((f) => f.numChs),
          c.name,
        ).toEqual(shapes.map((s) => s[4]));
        expect(y.dataSync().every(Number.isFinite), c.name).toBe(true);
        got[backend][`${c.name} output`] = y.dataSync() as Float32Array;
        maps.forEach((t, i) => (got[backend][`${c.name} features.${i}`] = t.dataSync() as Float32Array));
        tf.dispose([y, ...maps]);
        expect(tf.memory().numTensors, `${c.name}: leaked tensors`).toBe(before);
        tf.dispose([x, ...Object.values(sd)]);
        m.dispose();
        fo.dispose();
      }
    });
  }

  it('cpu and wasm give the same outputs and stage maps on every held-out config', () => {
    const keys = Object.keys(got.cpu);
    expect(keys.length).toBe(CASES.reduce((a, c) => a + 1 + (c.cfg.depths ?? []).length, 0));
    expect(Object.keys(got.wasm).sort()).toEqual(keys.slice().sort());
    for (const k of keys) expect(maxAbsDiff(got.cpu[k], got.wasm[k]), `${k}: cpu vs wasm`).toBeLessThan(1e-4);
  });

  it('BEVT token counts: video 2 T/pt (H/16)(W/16), image (H/16)(W/16), for other clip lengths and sizes', async () => {
    await useBackend('cpu');
    const m = bevtSwin({ embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: [2, 2, 2], patchNorm: true });
    for (const [t, h, w] of [
      [2, 64, 64],
      [6, 64, 128],
    ]) {
      const v = tf.zeros([1, t, h, w, 3]);
      const im = tf.zeros([1, h, w, 3]);
      const tv = m.forward(v);
      const ti = m.forwardImage(im);
      expect(tv.shape).toEqual([1, 2 * (t / 2) * (h / 16) * (w / 16), 64]);
      expect(ti.shape).toEqual([1, (h / 16) * (w / 16), 64]);
      tf.dispose([v, im, tv, ti]);
    }
    m.dispose();
  });

  it("the registry builds every released name (createModel, init: false) with the contract's configs", () => {
    const want: Record<string, { embedDim: number; depths: number[]; windowSize: Triple }> = {
      video_swin_tiny_patch244_window877: { embedDim: 96, depths: [2, 2, 6, 2], windowSize: [8, 7, 7] },
      video_swin_small_patch244_window877: { embedDim: 96, depths: [2, 2, 18, 2], windowSize: [8, 7, 7] },
      video_swin_base_patch244_window877: { embedDim: 128, depths: [2, 2, 18, 2], windowSize: [8, 7, 7] },
      video_swin_base_patch244_window1677: { embedDim: 128, depths: [2, 2, 18, 2], windowSize: [16, 7, 7] },
      bevt_swin_base_patch244_window877_k400: { embedDim: 128, depths: [2, 2, 18, 2], windowSize: [8, 7, 7] },
      bevt_swin_base_patch244_window1677_ssv2: { embedDim: 128, depths: [2, 2, 18, 2], windowSize: [16, 7, 7] },
    };
    for (const [name, w] of Object.entries(want)) {
      // one block per stage keeps it light; the resolved config still shows the variant's own values
      const m = createModel<SwinTransformer3D>(name, { depths: [1, 1, 1, 1] }, { init: false });
      expect(m).toBeInstanceOf(SwinTransformer3D);
      expect(m.cfg.embedDim, name).toBe(w.embedDim);
      expect(m.cfg.windowSize, name).toEqual(w.windowSize);
      expect(m.cfg.patchSize, name).toEqual([2, 4, 4]);
      expect(m.numFeatures, name).toBe(w.embedDim * 8);
      expect(videoSwinVariant(name).config.depths, name).toEqual(w.depths);
      m.dispose();
    }
  });
});
