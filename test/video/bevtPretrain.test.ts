/**
 * BEVT pretraining pieces: the masked-token losses against the official `loss_mask` (bevt_loss_t4_4x4),
 * the tube / block masks against the structure and statistics of the official generators
 * (bevt_mask_k400), on cpu and wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beitBlockMask, bevtLoss, bevtStreamSchedule, bevtTubeMask, maskedTokenLoss } from '../../src/pretrain/bevt.js';
import { SeededRandom } from '../../src/pretrain/rng.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectError } from '../helpers/errors.js';

/** Structure of one tube mask: each slot all-zero or the shared plane, the masked slots a cyclic run. */
function tubeStructure(input: Float32Array, slots: number, cells: number): { run: number; plane: number } {
  const planeOf = (t: number) => input.subarray(t * cells, (t + 1) * cells);
  const on = Array.from({ length: slots }, (_, t) => planeOf(t).some((v) => v === 1));
  const first = on.indexOf(true);
  expect(first).toBeGreaterThanOrEqual(0);
  const plane = planeOf(first);
  let bad = 0;
  for (let t = 0; t < slots; t++) {
    const p = planeOf(t);
    for (let i = 0; i < cells; i++) if ((p[i] !== 0 && p[i] !== 1) || p[i] !== (on[t] ? plane[i] : 0)) bad++;
  }
  expect(bad, 'cells off the tube structure').toBe(0);
  const run = on.filter(Boolean).length;
  // one cyclic run: exactly one off -> on transition around the circle (or all on)
  const starts = on.filter((v, t) => v && !on[(t + slots - 1) % slots]).length;
  expect(run === slots ? 0 : starts).toBe(run === slots ? 0 : 1);
  return { run, plane: plane.reduce((a, v) => a + v, 0) };
}

describe('bevt_mask_k400 structure and statistics', () => {
  let fx: Fixture;
  beforeAll(async () => {
    await useBackend('cpu');
    fx = loadFixture('bevt_mask_k400');
  });
  afterAll(() => fx.dispose());

  it("the reference masks and ours share the structure: tubes over T' slots, output = input repeated temporalScale times", () => {
    const cfg = fx.case.config;
    const d = fx.case.derived;
    const [h, w] = d.grid;
    const slots = d.temporal_slots;
    const check = (input: Float32Array, output: Float32Array) => {
      const { run, plane } = tubeStructure(input, slots, h * w);
      expect(run).toBeGreaterThanOrEqual(d.tube_length_min);
      expect(run).toBeLessThanOrEqual(d.tube_length_max);
      expect(plane).toBeLessThanOrEqual(d.max_masked_patches_2d);
      let bad = 0;
      for (let t = 0; t < d.output_frames; t++) {
        const src = Math.floor(t / cfg.temporalScale);
        for (let i = 0; i < h * w; i++) if (output[t * h * w + i] !== input[src * h * w + i]) bad++;
      }
      expect(bad, 'output cells that differ from their input slot').toBe(0);
    };
    const vin = fx.io.video_input_masks.dataSync() as Float32Array;
    const vout = fx.io.video_output_masks.dataSync() as Float32Array;
    const n = fx.io.video_input_masks.shape[0];
    for (let k = 0; k < n; k++)
      check(
        vin.subarray(k * slots * h * w, (k + 1) * slots * h * w),
        vout.subarray(k * d.output_frames * h * w, (k + 1) * d.output_frames * h * w),
      );
    const rng = new SeededRandom(5);
    for (let k = 0; k < 20; k++) {
      const m = bevtTubeMask({ ...cfg, seed: rng });
      expect(m.input.shape).toEqual([slots, h, w]);
      expect(m.output.shape).toEqual([d.output_frames, h, w]);
      check(m.input.dataSync() as Float32Array, m.output.dataSync() as Float32Array);
      tf.dispose([m.input, m.output]);
    }
  });

  it('mean masked cells and the tube-length range follow the reference statistics', () => {
    const cfg = fx.case.config;
    const st = fx.case.statistics;
    const d = fx.case.derived;
    const rng = new SeededRandom(11);
    const counts: number[] = [];
    const hist = new Map<number, number>();
    for (let k = 0; k < 300; k++) {
      const m = bevtTubeMask({ ...cfg, seed: rng });
      const { run, plane } = tubeStructure(m.input.dataSync() as Float32Array, d.temporal_slots, d.grid[0] * d.grid[1]);
      hist.set(run, (hist.get(run) ?? 0) + 1);
      counts.push(plane);
      const im = beitBlockMask({
        inputSize: cfg.inputSize,
        numMaskingPatches: cfg.numMaskingPatches,
        minNumPatches: cfg.minNumPatches,
        maxNumPatches: cfg.maxNumPatches,
        seed: rng,
      });
      counts.push(im.sum().dataSync()[0]);
      tf.dispose([m.input, m.output, im]);
    }
    const mean = counts.reduce((a, v) => a + v, 0) / counts.length;
    expect(Math.abs(mean - st.mean_masked_patches_2d) / st.mean_masked_patches_2d).toBeLessThan(0.03);
    expect(Math.max(...counts)).toBeLessThanOrEqual(st.max_masked_patches_2d);
    const lengths = [...hist.keys()].sort((a, b) => a - b);
    expect(lengths).toEqual(Object.keys(st.tube_length_histogram).map(Number));
    // roughly uniform over the lengths, as the reference histogram
    for (const l of lengths) expect(hist.get(l)!).toBeGreaterThan(300 / lengths.length / 2);
  });

  it('stream schedules: mixed steps train both streams, alternating and every-k steps one', () => {
    const run = (mode: Parameters<typeof bevtStreamSchedule>[1]) =>
      Array.from({ length: 6 }, (_, i) => bevtStreamSchedule(i, mode))
        .map((s) => (s.video && s.image ? 'b' : s.video ? 'v' : 'i'))
        .join('');
    expect(run('mix')).toBe('bbbbbb');
    expect(run('alternate')).toBe('vivivi');
    expect(run({ videoEvery: 3 })).toBe('viivii');
    expectError(() => bevtStreamSchedule(0, { videoEvery: 0 }), /videoEvery/);
  });

  it('rejects bad options with a clear error', () => {
    expectError(
      () => bevtTubeMask({ inputSize: 14, numMaskingPatches: 98, clipLen: 15, temporalScale: 2 }),
      /clipLen 15 is not a multiple of temporalScale 2/,
    );
    expectError(() => bevtTubeMask({ inputSize: 14, numMaskingPatches: 98, clipLen: 16, maskedTubeRange: [0.8, 0.5] }), /maskedTubeRange/);
  });
});

for (const backend of BACKENDS) {
  describe(`bevt_loss_t4_4x4 on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('bevt_loss_t4_4x4');
    });
    afterAll(() => fx.dispose());

    it('losses and masked accuracies match the official loss_mask', () => {
      const { atol, rtol } = fx.case;
      const io = fx.io;
      const before = tf.memory().numTensors;
      const r = bevtLoss(
        {
          logits3d: io.logits_3d,
          targets3d: io.target_ids_3d,
          mask3d: io.mask_3d,
          logits2d: io.logits_2d,
          targets2d: io.target_ids_2d,
          mask2d: io.mask_2d,
        },
        { lossWeight3d: fx.case.config.lossWeight3d, lossWeight2d: fx.case.config.lossWeight2d },
      );
      const pairs: [tf.Tensor, string][] = [
        [r.loss, 'loss'],
        [r.lossCls3d, 'loss_cls_3d'],
        [r.lossCls2d, 'loss_cls_2d'],
        [r.maskAcc3d, 'mask_acc_3d'],
        [r.maskAcc2d, 'mask_acc_2d'],
      ];
      const errs: Record<string, number> = {};
      for (const [t, key] of pairs) {
        const flat = t.reshape([1]);
        const c = compare(flat, io[key], atol, rtol);
        flat.dispose();
        errs[key] = c.maxAbsErr;
        expect(c.worstExcess, `${key}: ${c.maxAbsErr}`).toBeLessThanOrEqual(0);
      }
      tf.dispose(Object.values(r));
      expect(tf.memory().numTensors).toBe(before);
      console.log(`bevt_loss_t4_4x4 [${backend}] max abs err ${JSON.stringify(errs)}`);
    });

    it('maskedTokenLoss is differentiable in the logits and accepts float ids and bool masks', () => {
      const io = fx.io;
      const logits = io.logits_2d;
      const ids = io.target_ids_2d.reshape([2, 16]);
      const mask = io.mask_2d.reshape([2, 16]);
      const g = tf.grad((x: tf.Tensor) => maskedTokenLoss(x, ids, mask).loss)(logits);
      const gu = g.abs().sum(2).reshape([32]).dataSync();
      const m = mask.reshape([32]).dataSync();
      // gradient only at masked tokens
      for (let i = 0; i < 32; i++) expect(gu[i] > 0).toBe(m[i] === 1);
      const a = maskedTokenLoss(logits, ids.toInt(), mask.cast('bool'));
      const b = maskedTokenLoss(logits, ids, mask);
      expect(a.loss.dataSync()[0]).toBeCloseTo(b.loss.dataSync()[0], 6);
      tf.dispose([g, ids, mask, a.loss, a.accuracy, b.loss, b.accuracy]);
    });
  });
}
