/**
 * The detection demo's pipeline (examples/detection/pipeline.ts) at a tiny, fast setting on the wasm
 * backend it runs on: each detector, trained for a few dozen steps on synthetic shape images (one
 * class), reaches a held-out COCO box AP well above that of the same model at its initial weights
 * (and of a model that predicts nothing: AP 0); the PNG of predictions is written; the detector folder
 * it saves is read by `visbackbones detect`; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetectionDemoOptions, runDetectionDemo } from '../../examples/detection/pipeline.js';
import { registerFastKernels } from '../../src/backends/fastKernels.js';
import { runCli } from '../../src/cli/main.js';
import { syntheticDetection } from '../../src/data/syntheticDetection.js';
import { cocoEvaluate } from '../../src/tasks/cocoEval.js';
import { encodePng } from '../../src/viz/png.js';
import { useBackend } from '../helpers/backends.js';

/**
 * The tiny setting. Measured on wasm (one thread, the library's kernels, seeded initialisation): Mask R-CNN
 * box AP 0.132, AP50 0.392, mask AP 0.175 (initial weights: AP 0.0002); RetinaNet AP 0.022, AP50 0.094
 * (initial 0.0001); 26 and 21 s. The thresholds below are about half of that.
 */
const TINY: Record<'retinanet' | 'maskrcnn', DetectionDemoOptions> = {
  maskrcnn: {
    detectors: ['maskrcnn'],
    size: 'tiny',
    steps: 60,
    batchSize: 4,
    trainImages: 512,
    testImages: 40,
    lr: 5e-3,
    data: { numClasses: 1 },
  },
  retinanet: {
    detectors: ['retinanet'],
    size: 'tiny',
    steps: 60,
    batchSize: 4,
    trainImages: 512,
    testImages: 40,
    lr: 5e-3,
    data: { numClasses: 1 },
  },
};
/** Held-out box AP / AP50 each detector must reach (well above 0, the AP of predicting nothing). */
const MIN = { maskrcnn: { AP: 0.07, AP50: 0.2 }, retinanet: { AP: 0.01, AP50: 0.04 } };

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'vb-det-demo-'));
  await useBackend('wasm');
  await registerFastKernels();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('detection demo at a tiny setting (wasm)', () => {
  it('predicting nothing scores AP 0 (the baseline the demo is compared with)', () => {
    const data = syntheticDetection({ numClasses: 1, seed: 1000 });
    const gt = [0, 1, 2].map((i) => data.sample(i)).map((s) => ({ boxes: s.boxes, labels: s.labels }));
    const none = gt.map(() => ({ boxes: [], scores: [], labels: [] }));
    expect(cocoEvaluate(gt, none, { categories: [0] }).AP).toBe(0);
  });

  for (const name of ['maskrcnn', 'retinanet'] as const) {
    it(`${name}: trains to a held-out box AP well above the untrained model, draws the PNG, the saved folder runs in 'visbackbones detect'`, async () => {
      const out = join(tmp, name);
      const before = tf.memory().numTensors;
      const r = await runDetectionDemo({ ...TINY[name], out, verbose: false });
      expect(tf.memory().numTensors).toBe(before);
      const [res] = r.results;
      console.log(
        `${name} tiny: loss ${res.firstLoss.toFixed(3)} -> ${res.lastLoss.toFixed(3)}; AP ${res.stats.AP.toFixed(4)} AP50 ${res.stats.AP50.toFixed(4)} (initial ${res.initialStats.AP.toFixed(4)} / ${res.initialStats.AP50.toFixed(4)})${res.maskStats ? `; mask AP ${res.maskStats.AP.toFixed(4)}` : ''}; ${res.seconds.toFixed(0)} s`,
      );
      expect(res.lastLoss).toBeLessThan(res.firstLoss);
      expect(res.stats.AP).toBeGreaterThan(MIN[name].AP);
      expect(res.stats.AP50).toBeGreaterThan(MIN[name].AP50);
      expect(res.stats.AP).toBeGreaterThan(res.initialStats.AP + MIN[name].AP / 2);
      if (name === 'maskrcnn') expect(res.maskStats!.AP).toBeGreaterThan(MIN[name].AP / 2);

      const png = readFileSync(r.png!);
      expect(png.toString('latin1', 1, 4)).toBe('PNG');
      expect(png.readUInt32BE(16)).toBeGreaterThan(6 * 64);

      // the saved detector folder through the CLI, on a generated image written as PNG
      const s = syntheticDetection({ numClasses: 1, seed: 1000, imageSize: 64 }).sample(3);
      const px = new Uint8Array(s.width * s.height * 3).map((_, i) => Math.round(s.image[i] * 255));
      const img = join(tmp, `${name}.png`);
      writeFileSync(img, encodePng(px, s.width, s.height, { channels: 3 }));
      const lines: string[] = [];
      const code = await runCli(['detect', res.dir!, img, '--json', '--score-thresh', '0', '--max-dets', '5', '--backend', 'wasm'], {
        out: (l) => lines.push(l),
        err: (l) => lines.push(l),
      });
      expect(code, lines.join('\n')).toBe(0);
      const parsed = JSON.parse(lines[0]) as { image: string; detections: { label: string; score: number; box: number[] }[] };
      expect(parsed.image).toBe(img);
      expect(parsed.detections.length).toBeGreaterThan(0);
      expect(parsed.detections.length).toBeLessThanOrEqual(5);
      expect(parsed.detections[0].label).toBe('circle');
      expect(await runCli(['detect', tmp, img], { out: () => {}, err: () => {} })).toBe(1);
      expect(await runCli(['detect', res.dir!], { out: () => {}, err: () => {} })).toBe(2);
    });
  }
});
