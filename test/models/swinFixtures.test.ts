import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { swin, swinV2 } from '../../src/models/swin/swinTransformer.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const CASES = [
  { name: 'swin_p4w4_64', build: swin },
  { name: 'swinv2_p4w4_64', build: swinV2 },
] as const;

for (const backend of BACKENDS) {
  describe(`Swin / SwinV2 fixtures on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    for (const c of CASES) {
      it(`${c.name}: logits, pre-logits, features and stages match the reference`, () => {
        const fx = loadFixture(c.name);
        const { atol, rtol } = fx.case;
        const model = c.build(fx.case.config);
        const res = loadTimmWeights(model, fx.weightsBytes!);
        expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
        const x = nchwToNhwc(fx.io.input);
        const before = tf.memory().numTensors;
        const logits = model.forward(x) as tf.Tensor;
        const feats = model.forwardFeatures(x);
        const pre = model.forwardHead(feats, { preLogits: true });
        const stages = model.forwardIntermediates(x, { intermediatesOnly: true });
        const errs: Record<string, number> = {};
        const check = (name: string, t: tf.Tensor, exp: tf.Tensor) => {
          const r = compare(t, exp, atol, rtol);
          errs[name] = r.maxAbsErr;
          expect(r.worstExcess, `${name} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        };
        check('logits', logits, fx.io.logits);
        check('pre_logits', pre, fx.io.pre_logits);
        check('forward_features', feats, fx.io.forward_features);
        stages.forEach((s, i) => {
          const exp = nchwToNhwc(fx.io[`features.${i}`]);
          check(`features.${i}`, s, exp);
          exp.dispose();
        });
        expect(stages.length).toBe(Object.keys(fx.io).filter((k) => k.startsWith('features.')).length);
        tf.dispose([logits, feats, pre, ...stages]);
        expect(tf.memory().numTensors).toBe(before);
        console.log(`${c.name} [${backend}] max abs err`, JSON.stringify(errs));
        x.dispose();
        model.dispose();
        fx.dispose();
      });

      it(`${c.name}: writeSafetensors(stateDict()) reproduces every tensor of the file byte for byte`, () => {
        const fx = loadFixture(c.name);
        const model = c.build(fx.case.config);
        loadTimmWeights(model, fx.weightsBytes!);
        const sd = model.stateDict();
        const bytes = writeSafetensors(sd);
        const back = readSafetensors(bytes);
        const ref = readSafetensors(fx.weightsBytes!);
        expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
        for (const k of Object.keys(ref)) {
          expect(back[k].shape, k).toEqual(ref[k].shape);
          const a = new Uint8Array((back[k].dataSync() as Float32Array).buffer.slice(0));
          const b = new Uint8Array((ref[k].dataSync() as Float32Array).buffer.slice(0));
          expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), k).toBe(0);
        }
        tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
        model.dispose();
        fx.dispose();
      });
    }
  });
}
