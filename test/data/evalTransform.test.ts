import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { evalPlan } from '../../src/data/evalTransform.js';
import { createTransform } from '../../src/data/transforms.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { FIXTURES_DIR, compare, loadFixture, nchwToNhwc, type Fixture } from '../helpers/fixtures.js';

const CASES = readdirSync(FIXTURES_DIR).filter((d) => d.startsWith('eval_transform_')).sort();

for (const backend of BACKENDS) {
  describe(`timm eval transform (${backend})`, () => {
    beforeAll(() => useBackend(backend));
    it('has the cases', () => expect(CASES.length).toBeGreaterThanOrEqual(8));
    for (const name of CASES) {
      describe(name, () => {
        let fx: Fixture;
        beforeAll(() => {
          fx = loadFixture(name);
        });
        afterAll(() => fx.dispose());
        it('reproduces every stored eval tensor from the stored uint8 image', () => {
          const { atol, rtol } = fx.case;
          let worst = 0;
          for (const ev of fx.case.evals as Record<string, any>[]) {
            const cfg = resolveDataConfig(ev.dataConfig);
            expect(cfg).toEqual(ev.dataConfig);
            const before = tf.memory().numTensors;
            const transform = createTransform(cfg);
            const out = transform(fx.io[ev.input] as tf.Tensor3D);
            expect(out.dtype).toBe('float32');
            const expected = nchwToNhwc(fx.io[ev.key]);
            const batched = out.expandDims(0);
            const r = compare(batched, expected, atol, rtol);
            worst = Math.max(worst, r.maxAbsErr);
            expect(r.worstExcess, `${ev.key}: max abs err ${r.maxAbsErr} (atol ${atol})`).toBeLessThanOrEqual(0);
            tf.dispose([out, expected, batched]);
            // everything the step records: resize size, crop offsets
            const resize = ev.steps.find((s: any) => s.op === 'resize');
            const [ih, iw] = fx.io[ev.input].shape as number[];
            const plan = evalPlan(ih, iw, cfg);
            if (resize) expect(plan.resize).toEqual(resize.output_hw);
            expect(tf.memory().numTensors).toBe(before);
          }
          console.log(`${backend} ${name}: max abs err ${worst.toExponential(2)} (atol ${atol})`);
        });
      });
    }
  });
}
