/**
 * The parity tests every backbone golden case gets (see test/fixtures/README.md), registered once per
 * backend in {@link BACKENDS}.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backbone } from '../../src/models/backbone.js';
import { loadTimmWeights } from '../../src/weights/loadTimmWeights.js';
import { readSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { BACKENDS, useBackend } from './backends.js';
import { backboneOutputs, expectedOutput, featureLevels } from './backboneOutputs.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from './fixtures.js';

/** Options of {@link describeFixtureParity}. */
export interface FixtureParityOptions {
  /** Name of the family in the suite titles (default: the case name). */
  label?: string;
  /**
   * The classifier keys of the reference file: adds a test that a `featuresOnly` model with
   * `outIndices: [1, -1]` skips exactly these keys when loading and returns levels 1 and last.
   */
  headKeys?: string[];
}

/**
 * Registers, on every backend, the two tests of a backbone golden case `caseName`, with `build`
 * creating the model from (a variant of) the case's `config`:
 *
 * 1. parity: the reference state dict loads completely (every tensor used, none skipped); `logits`,
 *    `pre_logits`, `forward_features` and every `features.<i>` (from `forwardIntermediates`, and again
 *    from a `featuresOnly` model taking every level) are within the case's own `atol` / `rtol`; every
 *    output the case lists is compared; the max abs errors are printed; no tensor leaks.
 * 2. `writeSafetensors(stateDict())` reproduces every tensor of the reference file byte for byte.
 * 3. (with `headKeys`) a featuresOnly model loads the file skipping exactly the classifier keys.
 */
export function describeFixtureParity(caseName: string, build: (config: any) => Backbone, opts: FixtureParityOptions = {}): void {
  const label = opts.label ?? caseName;
  for (const backend of BACKENDS) {
    describe(`${label} fixture ${caseName} on ${backend}`, () => {
      let fx: Fixture;
      beforeAll(async () => {
        await useBackend(backend);
        fx = loadFixture(caseName);
      });
      afterAll(() => fx.dispose());

      it(`${caseName}: logits, pre_logits, forward_features and every features.<i> (also featuresOnly) match the reference`, () => {
        const { atol, rtol } = fx.case;
        const nFeat = featureLevels(fx);
        const model = build(fx.case.config);
        const res = loadTimmWeights(model, fx.weightsBytes!);
        expect(res.loaded.length).toBe(fx.case.weights.num_tensors);
        expect(res.skipped).toEqual([]);
        const fo = build({ ...fx.case.config, featuresOnly: true, outIndices: Array.from({ length: nFeat }, (_, i) => i) });
        loadTimmWeights(fo, fx.weightsBytes!);
        const x = nchwToNhwc(fx.io.input);
        const before = tf.memory().numTensors;
        const run = backboneOutputs(fx, model, fo, x);
        expect(run.levels).toEqual([nFeat, nFeat]);
        const errs: Record<string, number> = {};
        for (const { name, actual, ref } of run.outputs) {
          const exp = expectedOutput(fx, ref);
          const r = compare(actual, exp, atol, rtol);
          exp.dispose();
          errs[name] = r.maxAbsErr;
          expect(r.worstExcess, `${name} on ${backend}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
        }
        // every output of the case (input aside) was compared
        expect(Object.keys(fx.case.outputs).filter((k) => k !== 'input' && !(k in errs))).toEqual([]);
        run.dispose();
        expect(tf.memory().numTensors).toBe(before);
        console.log(`${caseName} [${backend}] max abs err ${JSON.stringify(errs)}`);
        x.dispose();
        model.dispose();
        fo.dispose();
      });

      it(`${caseName}: writeSafetensors(stateDict()) reproduces every tensor of the reference file byte for byte`, () => {
        const model = build(fx.case.config);
        loadTimmWeights(model, fx.weightsBytes!);
        const sd = model.stateDict();
        const back = readSafetensors(writeSafetensors(sd));
        const ref = readSafetensors(fx.weightsBytes!);
        expect(Object.keys(back).sort()).toEqual(Object.keys(ref).sort());
        for (const k of Object.keys(ref)) {
          expect(back[k].shape, k).toEqual(ref[k].shape);
          const a = Buffer.from(new Uint8Array((back[k].dataSync() as Float32Array).slice().buffer));
          const b = Buffer.from(new Uint8Array((ref[k].dataSync() as Float32Array).slice().buffer));
          expect(Buffer.compare(a, b), k).toBe(0);
        }
        tf.dispose([...Object.values(sd), ...Object.values(back), ...Object.values(ref)]);
        model.dispose();
      });

      if (opts.headKeys) {
        it(`${caseName}: a featuresOnly model loads the checkpoint without its head and returns the chosen levels`, () => {
          const m = build({ ...fx.case.config, featuresOnly: true, outIndices: [1, -1] });
          expect(m.numClasses).toBe(0);
          const res = loadTimmWeights(m, fx.weightsBytes!);
          expect(res.skipped.sort()).toEqual([...opts.headKeys!].sort());
          const x = nchwToNhwc(fx.io.input);
          const last = featureLevels(fx) - 1;
          const maps = m.forward(x) as tf.Tensor4D[];
          expect(maps.length).toBe(2);
          [1, last].forEach((s, i) => {
            const exp = expectedOutput(fx, `features.${s}`);
            expect(compare(maps[i], exp, fx.case.atol, fx.case.rtol).worstExcess).toBeLessThanOrEqual(0);
            exp.dispose();
          });
          tf.dispose([x, ...maps]);
          m.dispose();
        });
      }
    });
  }
}
