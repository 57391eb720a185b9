/**
 * BEVT two-stream backbone golden case (official `SwinTransformerBEVT`): video and image tokens with and
 * without masks, every stage map of the masked runs, on cpu and wasm; strict loading and a
 * byte-identical state-dict round trip.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bevtSwin } from '../../src/models/videoSwin/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const CASE = 'bevt_swin_t4_64';
const ncthwToNthwc = (t: tf.Tensor) => tf.transpose(t, [0, 2, 3, 4, 1]);

for (const backend of BACKENDS) {
  describe(`bevt fixture ${CASE} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(CASE);
    });
    afterAll(() => fx.dispose());

    it('video and image tokens (masked and unmasked) and the stage maps match the reference; no leak', () => {
      const { atol, rtol } = fx.case;
      const m = bevtSwin(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      const idxKeys = Object.keys(readSafetensorsHeader(fx.weightsBytes!).tensors).filter((k) => k.endsWith('relative_position_index'));
      expect(res.skipped.sort()).toEqual(idxKeys.sort());
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors - idxKeys.length);
      const video = ncthwToNthwc(fx.io.video);
      const image = nchwToNhwc(fx.io.image);
      const vmask = fx.io.video_mask;
      const imask = fx.io.image_mask;
      const before = tf.memory().numTensors;
      const v = m.forwardVideoStream(video, { mask: vmask });
      const im = m.forwardImageStream(image, { mask: imask });
      const vu = m.forward(video);
      const iu = m.forwardImage(image);
      const got: Record<string, tf.Tensor> = {
        video_tokens: v.tokens,
        image_tokens: im.tokens,
        video_tokens_unmasked: vu,
        image_tokens_unmasked: iu,
      };
      v.features.forEach((f, i) => (got[`video_features.${i}`] = f));
      im.features.forEach((f, i) => (got[`image_features.${i}`] = f));
      const errs: Record<string, number> = {};
      for (const key of Object.keys(fx.case.outputs)) {
        const layout = fx.case.layouts[key];
        const exp = layout === 'NCTHW' ? ncthwToNthwc(fx.io[key]) : layout === 'NCHW' ? nchwToNhwc(fx.io[key]) : fx.io[key].clone();
        expect(got[key], key).toBeDefined();
        const r = compare(got[key], exp, atol, rtol);
        exp.dispose();
        errs[key] = r.maxAbsErr;
        expect(r.worstExcess, `${key} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
      }
      // the mask changes the tokens
      expect(compare(v.tokens, vu, 1e-3, 0).worstExcess).toBeGreaterThan(0);
      tf.dispose(Object.values(got));
      expect(tf.memory().numTensors).toBe(before);
      console.log(`${CASE} [${backend}] max abs err ${JSON.stringify(errs)}`);
      tf.dispose([video, image]);
      m.dispose();
    });

    it('writeSafetensors(stateDict()) reproduces every tensor of the reference file byte for byte', () => {
      const m = bevtSwin(fx.case.config);
      loadTimmWeights(m, fx.weightsBytes!);
      const sd = m.stateDict();
      const bytes = writeSafetensors(sd);
      const back = readSafetensors(bytes);
      const ref = readSafetensors(fx.weightsBytes!);
      expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
      for (const k of Object.keys(ref)) {
        expect(back[k].shape, k).toEqual(ref[k].shape);
        expect(back[k].dtype, k).toBe(ref[k].dtype);
        const a = Buffer.from(new Uint8Array(back[k].dataSync().slice().buffer));
        const b = Buffer.from(new Uint8Array(ref[k].dataSync().slice().buffer));
        expect(Buffer.compare(a, b), k).toBe(0);
      }
      tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
      m.dispose();
    });
  });
}
