/**
 * The demo's pipeline (examples/demo/pipeline.ts) end to end at the `--quick` setting (seed 0), on
 * the wasm backend the demo runs on: SimMIM pretraining lowers the loss, the reconstruction PNG is a
 * valid image of the expected size, the classifier saved as timm-named safetensors and as a TF.js
 * model directory reproduces the trained model's logits, nothing leaks, both classifiers are above
 * chance, and the one fine-tuned from the pretrained weights beats the same model (same initial
 * weights, same steps, same held-out images) trained from scratch by the margin that
 * `npm run demo -- --quick --seeds 3` showed on every seed (the README's table).
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODELS, DemoOptions, FIGURE_LABEL_WIDTH, FIGURE_ROWS, QUICK_STEPS, runDemo } from '../../examples/demo/pipeline.js';
import { swinV2 } from '../../src/models/swin/index.js'; // registers the families, so a saved directory can be rebuilt
import { readSafetensors } from '../../src/weights/safetensors.js';
import { loadLayersModelFromDir } from '../../src/weights/tfjsFormat.js';
import { registerFastKernels } from '../../src/backends/fastKernels.js';
import { useBackend } from '../helpers/backends.js';

/** `npm run demo -- --quick` (seed 0, one of the README's three), with the library's SIMD kernels as the demo. */
const TINY: DemoOptions = { model: 'swinv2_demo', seed: 0, ...QUICK_STEPS };
/**
 * Held-out accuracy (600 images, 6 classes, chance 1/6) the run must reach, with headroom below what
 * `npm run demo -- --quick --seeds 3` measured (README, "The demo"): seeds 0, 1, 2 gave from scratch
 * 20.7 / 19.2 / 25.2 %, fine-tuned from SimMIM 31.8 / 31.2 / 35.0 % (gain 11.2 / 12.0 / 9.8 points),
 * linear probe random 25.0 / 26.5 / 27.2 % vs SimMIM 32.3 / 32.5 / 33.2 % (gain 7.3 / 6.0 / 6.0).
 */
const MARGIN = 0.06;
const PROBE_MARGIN = 0.03;
const MIN_SCRATCH = 1 / 6;
const MIN_FINETUNED = 0.25;

let tmp: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'vb-demo-'));
  await useBackend('wasm');
  await registerFastKernels();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('demo at a tiny configuration (wasm)', () => {
  it('pretrains, draws the reconstructions, saves loadable models, and fine-tuning from pretraining beats scratch', async () => {
    const before = tf.memory().numTensors;
    const r = await runDemo({ ...TINY, out: tmp, verbose: false });
    expect(tf.memory().numTensors).toBe(before);
    console.log(
      `demo tiny: pretrain loss ${r.pretrain.firstLoss.toFixed(4)} -> ${r.pretrain.lastLoss.toFixed(4)}; fine-tuned ${(100 * r.finetune.accuracy).toFixed(1)}% vs scratch ${(100 * r.scratch.accuracy).toFixed(1)}% on ${r.testImages} images; ${r.seconds.toFixed(0)} s`,
    );

    // SimMIM learned something
    expect(r.pretrain.steps).toBe(TINY.pretrainSteps);
    expect(r.pretrain.lastLoss).toBeLessThan(0.8 * r.pretrain.firstLoss);

    // the PNG: a label column, then 4 rows (input, masked, prediction, pasted) of 8 images
    expect(FIGURE_ROWS).toHaveLength(4);
    const png = readFileSync(r.files.reconstructionPng);
    expect(png.toString('latin1', 1, 4)).toBe('PNG');
    const w = png.readUInt32BE(16);
    const h = png.readUInt32BE(20);
    const size = (TINY.config?.imgSize ?? DEMO_MODELS[TINY.model!].config.imgSize) as number;
    const scale = Math.max(1, Math.round(96 / size));
    expect([w, h]).toEqual([2 + FIGURE_LABEL_WIDTH + 2 + 8 * (size * scale + 2), 2 + 4 * (size * scale + 2)]);
    expect(inflateSync(png.subarray(41, 41 + png.readUInt32BE(33))).length).toBe(h * (w * 3 + 1));

    // the saved classifier: timm keys load strictly into a fresh model; the TF.js directory gives the same logits
    const sd = readSafetensors(new Uint8Array(readFileSync(r.files.classifierSafetensors!)));
    expect(Object.keys(sd)).toContain('head.fc.weight');
    expect(Object.keys(sd)).toContain('layers.0.blocks.0.attn.cpb_mlp.0.weight');
    const cfg = { ...DEMO_MODELS[TINY.model!].config, ...(TINY.config ?? {}), numClasses: TINY.numClasses ?? 6 };
    const model = swinV2(cfg);
    model.loadStateDict(sd);
    tf.dispose(Object.values(sd));
    const dir = await loadLayersModelFromDir(r.files.tfjsDir!);
    const info = JSON.parse(readFileSync(join(r.files.tfjsDir!, 'visbackbones.json'), 'utf8'));
    expect(info.inputShape).toEqual([size, size, 3]);
    expect(info.classNames).toEqual(r.classNames);
    expect(r.classNames).toHaveLength(TINY.numClasses ?? 6);
    const x = tf.randomNormal([3, size, size, 3], 0, 1, 'float32', 5);
    const a = model.forwardLogits(x);
    const b = dir.predict(x) as tf.Tensor;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-5);
    tf.dispose([x, a, b]);
    model.dispose();
    dir.dispose();

    // the point of the demo: both learn, and pretraining helps
    expect(r.scratch.accuracy).toBeGreaterThan(MIN_SCRATCH);
    expect(r.finetune.accuracy).toBeGreaterThan(MIN_FINETUNED);
    expect(r.finetune.accuracy - r.scratch.accuracy).toBeGreaterThanOrEqual(MARGIN);
    expect(r.probe.pretrained - r.probe.random).toBeGreaterThanOrEqual(PROBE_MARGIN);
  }, 600_000);
});
