import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clipTextContextEncoder, contextDecoder } from '../../src/models/denseclip/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectRoundTrip } from './denseclipHelpers.js';

for (const backend of BACKENDS) {
  describe(`denseclip text modules on ${backend}`, () => {
    const fxs: Record<string, Fixture> = {};
    beforeAll(async () => {
      await useBackend(backend);
      for (const c of ['denseclip_context_decoder_w16', 'denseclip_text_encoder_l12']) fxs[c] = loadFixture(c);
    });
    afterAll(() => Object.values(fxs).forEach((f) => f.dispose()));

    it('denseclip_context_decoder_w16: output, memory, queries and every decoder layer match the official ContextDecoder', () => {
      const fx = fxs.denseclip_context_decoder_w16;
      const m = contextDecoder(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const before = tf.memory().numTensors;
      const r = m.forwardWithIntermediates(fx.io.text, fx.io.visual);
      const out = m.forward(fx.io.text, fx.io.visual);
      const got: Record<string, tf.Tensor> = { output: out, memory: r.memory, queries: r.queries };
      r.layers.forEach((t, i) => (got[`decoder.${i}`] = t));
      const errs: Record<string, number> = {};
      for (const name of Object.keys(fx.case.outputs)) {
        const c = compare(got[name], fx.io[name], fx.case.atol, fx.case.rtol);
        errs[name] = c.maxAbsErr;
        expect(c.worstExcess, `${name}: ${c.maxAbsErr}`).toBeLessThanOrEqual(0);
      }
      console.log(`denseclip_context_decoder_w16 [${backend}] max abs err ${JSON.stringify(errs)}`);
      tf.dispose([out, r.memory, r.queries, r.output, ...r.layers]);
      expect(tf.memory().numTensors).toBe(before);
      expectRoundTrip(m, fx);
      m.dispose();
    });

    it('denseclip_text_encoder_l12: text embeddings and ln_final match the official CLIPTextContextEncoder', () => {
      const fx = fxs.denseclip_text_encoder_l12;
      const m = clipTextContextEncoder(fx.case.config);
      const res = loadTimmWeights(m, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      const ids = fx.io.text.toInt();
      const before = tf.memory().numTensors;
      const r = m.forwardWithTokens(ids, fx.io.context);
      const e2 = m.forward(fx.io.text, fx.io.context); // float ids are accepted
      const errs: Record<string, number> = {};
      for (const [name, t] of [
        ['text_embeddings', r.embeddings],
        ['ln_final', r.tokens],
        ['text_embeddings', e2],
      ] as const) {
        const c = compare(t, fx.io[name], fx.case.atol, fx.case.rtol);
        errs[name] = Math.max(errs[name] ?? 0, c.maxAbsErr);
        expect(c.worstExcess, `${name}: ${c.maxAbsErr}`).toBeLessThanOrEqual(0);
      }
      console.log(`denseclip_text_encoder_l12 [${backend}] max abs err ${JSON.stringify(errs)}`);
      tf.dispose([r.embeddings, r.tokens, e2]);
      expect(tf.memory().numTensors).toBe(before);
      ids.dispose();
      expectRoundTrip(m, fx);
      m.dispose();
    });
  });
}
