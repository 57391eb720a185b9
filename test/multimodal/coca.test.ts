import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coca, cocaLoss } from '../../src/models/clip/index.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

const FIXTURE = 'coca_tiny_32';

for (const backend of BACKENDS) {
  describe(`CoCa fixture ${FIXTURE} on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture(FIXTURE);
    });
    afterAll(() => fx.dispose());

    const tol = (name: string) => fx.case.tolerances?.[name] ?? { atol: fx.case.atol, rtol: fx.case.rtol };
    const checkOut = (errs: Record<string, number>, name: string, actual: tf.Tensor, expected?: tf.Tensor) => {
      const { atol, rtol } = tol(name);
      const exp = expected ?? fx.io[name];
      const a = actual.reshape(exp.shape);
      const r = compare(a, exp, atol, rtol);
      a.dispose();
      errs[name] = r.maxAbsErr;
      expect(r.worstExcess, `${name} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
    };

    it('every output, the losses and the greedy captions match open_clip', () => {
      const model = coca(fx.case.config);
      const res = loadTimmWeights(model, fx.weightsBytes!);
      expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
      expect(res.skipped).toEqual([]);
      const image = nchwToNhwc(fx.io.image);
      const text = fx.io.text;
      const before = tf.memory().numTensors;
      const errs: Record<string, number> = {};
      const out = model.forward({ image, text });
      checkOut(errs, 'image_features', out.imageFeatures);
      checkOut(errs, 'text_features', out.textFeatures);
      checkOut(errs, 'image_embs', out.imageEmbs);
      checkOut(errs, 'text_embs', out.textEmbs);
      checkOut(errs, 'logits', out.logits);
      checkOut(errs, 'logit_scale', out.logitScale);
      const iu = model.encodeImage(image, { normalize: false });
      const tu = model.encodeText(text, { normalize: false });
      checkOut(errs, 'image_features_unnormalized', iu);
      checkOut(errs, 'text_features_unnormalized', tu);
      const inorm = model.encodeImage(image);
      checkOut({}, 'image_features', inorm);
      // the losses on the stored network outputs, with their own tolerances
      const stored = {
        imageFeatures: fx.io.image_features,
        textFeatures: fx.io.text_features,
        logits: fx.io.logits,
        logitScale: fx.io.logit_scale.reshape([]),
      };
      const loss = cocaLoss(stored, text, { captionLossWeight: 2, clipLossWeight: 1, padId: 0 });
      checkOut(errs, 'contrastive_loss', loss.contrastiveLoss);
      checkOut(errs, 'caption_loss', loss.captionLoss);
      checkOut(errs, 'loss', loss.loss);
      // and on our own outputs, within the network tolerance
      const own = cocaLoss(out, text);
      expect(Math.abs(own.loss.dataSync()[0] - fx.io.loss.dataSync()[0])).toBeLessThan(1e-3);
      const g = fx.case.generation;
      const gen = model.generate(image, {
        seqLen: g.seq_len,
        minSeqLen: g.min_seq_len,
        sotTokenId: g.sot_token_id,
        eosTokenId: g.eos_token_id,
        padTokenId: g.pad_token_id,
      });
      expect(gen.dtype).toBe('int32');
      expect(gen.shape).toEqual(fx.io.generated_greedy.shape);
      expect(Array.from(gen.dataSync())).toEqual(Array.from(fx.io.generated_greedy.dataSync()));
      errs.generated_greedy = 0;
      tf.dispose([...Object.values(out), iu, tu, inorm, stored.logitScale, ...Object.values(loss), ...Object.values(own), gen]);
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(fx.case.outputs).filter((k) => !(k in errs))).toEqual([]);
      console.log(`${FIXTURE} [${backend}] max abs err ${JSON.stringify(errs)}`);
      image.dispose();
      model.dispose();
    });

    it('beam search, top-k and top-p sampling give well-formed captions; top-k 1 equals greedy; seeds repeat', () => {
      const model = coca(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      const image = nchwToNhwc(fx.io.image);
      const g = fx.case.generation;
      const base = {
        seqLen: g.seq_len,
        minSeqLen: g.min_seq_len,
        sotTokenId: g.sot_token_id,
        eosTokenId: g.eos_token_id,
        padTokenId: g.pad_token_id,
      };
      const before = tf.memory().numTensors;
      const rows = (t: tf.Tensor2D) => {
        const a = t.arraySync() as number[][];
        t.dispose();
        return a;
      };
      const wellFormed = (r: number[][], label: string) => {
        for (const row of r) {
          expect(row.length, label).toBeLessThanOrEqual(g.seq_len);
          expect(row[0], label).toBe(g.sot_token_id);
          const e = row.indexOf(g.eos_token_id);
          if (e >= 0) {
            expect(e, `${label}: EOS before minSeqLen`).toBeGreaterThanOrEqual(g.min_seq_len - 1);
            expect(
              row.slice(e + 1).every((v) => v === g.pad_token_id),
              `${label}: padding after EOS`,
            ).toBe(true);
          }
        }
      };
      const greedy = rows(model.generate(image, base));
      expect(rows(model.generate(image, { ...base, generationType: 'top_k', topK: 1 }))).toEqual(greedy);
      const beam = rows(model.generate(image, { ...base, generationType: 'beam_search', numBeams: 3 }));
      wellFormed(beam, 'beam_search');
      const k1 = rows(model.generate(image, { ...base, generationType: 'top_k', topK: 5, temperature: 2, seed: 3 }));
      const k2 = rows(model.generate(image, { ...base, generationType: 'top_k', topK: 5, temperature: 2, seed: 3 }));
      wellFormed(k1, 'top_k');
      expect(k2).toEqual(k1);
      const p1 = rows(model.generate(image, { ...base, generationType: 'top_p', topP: 0.9, seed: 4 }));
      wellFormed(p1, 'top_p');
      expect(tf.memory().numTensors).toBe(before);
      expect(() => model.generate(image, { ...base, generationType: 'nope' as never })).toThrow(/generationType 'nope'/);
      expect(() => model.generate(image, { seqLen: 5 })).toThrow(/sotTokenId 49406 is outside the vocabulary/);
      image.dispose();
      model.dispose();
    });

    it('writeSafetensors(stateDict()) reproduces the reference file byte for byte (0-dim logit_scale included)', () => {
      const model = coca(fx.case.config);
      loadTimmWeights(model, fx.weightsBytes!);
      const sd = model.stateDict();
      const back = readSafetensors(writeSafetensors(sd));
      const ref = readSafetensors(fx.weightsBytes!);
      expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
      expect(back.logit_scale.shape).toEqual([]);
      for (const k of Object.keys(ref)) {
        expect(back[k].shape, k).toEqual(ref[k].shape);
        const a = Buffer.from(new Uint8Array((back[k].dataSync() as Float32Array).slice().buffer));
        const b = Buffer.from(new Uint8Array((ref[k].dataSync() as Float32Array).slice().buffer));
        expect(Buffer.compare(a, b), k).toBe(0);
      }
      tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
      model.dispose();
    });
  });
}
