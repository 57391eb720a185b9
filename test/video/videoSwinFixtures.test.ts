/**
 * Video Swin golden cases (official BEVT `SwinTransformer3D`): every stage map and the normed output on
 * cpu and wasm, featuresOnly, strict loading of the reference file (I64 index buffers skipped), and a
 * byte-identical state-dict round trip.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoSwin } from '../../src/models/videoSwin/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture } from '../helpers/fixtures.js';

/** NCTHW -> NTHWC. */
export function ncthwToNthwc(t: tf.Tensor): tf.Tensor5D {
  return tf.transpose(t, [0, 2, 3, 4, 1]) as tf.Tensor5D;
}

const CASES = ['video_swin_t4_54', 'video_swin_t5_32_tshift'];

for (const backend of BACKENDS) {
  for (const name of CASES) {
    describe(`video swin fixture ${name} on ${backend}`, () => {
      let fx: Fixture;
      beforeAll(async () => {
        await useBackend(backend);
        fx = loadFixture(name);
      });
      afterAll(() => fx.dispose());

      it('every stage map and the normed output match the reference; featuresOnly too; no leak', () => {
        const { atol, rtol } = fx.case;
        const m = videoSwin(fx.case.config);
        const res = loadTimmWeights(m, fx.weightsBytes!);
        const idxKeys = Object.keys(readSafetensorsHeader(fx.weightsBytes!).tensors).filter((k) => k.endsWith('relative_position_index'));
        expect(res.skipped.sort()).toEqual(idxKeys.sort());
        expect(res.loaded.length).toBe(fx.case.weights.num_tensors - idxKeys.length);
        const nStages = fx.case.config.depths.length;
        const fo = videoSwin({ ...fx.case.config, featuresOnly: true });
        loadTimmWeights(fo, fx.weightsBytes!);
        const x = ncthwToNthwc(fx.io.input);
        // the first forward at a clip size leaves nothing behind either (masks are cached as values)
        const before = tf.memory().numTensors;
        const out = m.forward(x) as tf.Tensor5D;
        const feats = fo.forward(x) as tf.Tensor5D[];
        expect(feats.length).toBe(nStages);
        const errs: Record<string, number> = {};
        const check = (key: string, actual: tf.Tensor) => {
          const exp = ncthwToNthwc(fx.io[key]);
          const r = compare(actual, exp, atol, rtol);
          exp.dispose();
          errs[key] = r.maxAbsErr;
          expect(r.worstExcess, `${key} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        };
        check('output', out);
        feats.forEach((f, i) => {
          check(`features.${i}`, f);
          expect(f.shape[4]).toBe(fo.featureInfo[i].numChs);
        });
        expect(Object.keys(fx.case.outputs).filter((k) => !(k in errs))).toEqual([]);
        tf.dispose([out, ...feats]);
        expect(tf.memory().numTensors).toBe(before);
        console.log(`${name} [${backend}] max abs err ${JSON.stringify(errs)}`);
        x.dispose();
        m.dispose();
        fo.dispose();
      });

      it('writeSafetensors(stateDict()) reproduces every tensor of the reference file byte for byte', () => {
        const m = videoSwin(fx.case.config);
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
        // integer buffers are written with the reference's dtype (I64 relative_position_index)
        const refHeader = readSafetensorsHeader(fx.weightsBytes!).tensors;
        const ourHeader = readSafetensorsHeader(bytes).tensors;
        for (const k of Object.keys(refHeader)) expect(ourHeader[k].dtype, k).toBe(refHeader[k].dtype);
        tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
        m.dispose();
      });
    });
  }
}
