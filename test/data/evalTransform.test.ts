import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { evalPlan } from '../../src/data/evalTransform.js';
import { createTransform } from '../../src/data/transforms.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { FIXTURES_DIR, compare, loadFixture, nchwToNhwc, type Fixture } from '../helpers/fixtures.js';

const CASES = readdirSync(FIXTURES_DIR)
  .filter((d) => d.startsWith('eval_transform_'))
  .sort();

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
            // the same config from the model name, as timm resolves it
            expect(resolveDataConfig(ev.model, { useTestSize: ev.use_test_size })).toEqual(ev.dataConfig);
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

describe('eval transform: inputs, normalize false, border mode', () => {
  beforeAll(() => useBackend('cpu'));
  it('normalize false returns the uint8 crop that the stored tensor encodes', () => {
    const fx = loadFixture('eval_transform_coffee');
    const ev = fx.case.evals[0];
    const cfg = resolveDataConfig(ev.dataConfig);
    const u = createTransform(cfg, { normalize: false })(fx.io[ev.input] as tf.Tensor3D);
    expect(u.dtype).toBe('int32');
    const rec = tf.tidy(() => {
      const x = nchwToNhwc(fx.io[ev.key]).squeeze([0]);
      return x.mul(tf.tensor1d(cfg.std)).add(tf.tensor1d(cfg.mean)).mul(255).round();
    });
    expect(Array.from(u.dataSync())).toEqual(Array.from(rec.dataSync()));
    tf.dispose([u, rec]);
    fx.dispose();
  });
  it('border mode scales the longer edge and pads with round(255 * mean)', () => {
    const img = tf.fill([20, 40, 3], 200, 'int32') as tf.Tensor3D;
    const cfg = resolveDataConfig({}, { imgSize: 16, cropPct: 1, cropMode: 'border', mean: [0.5, 0.25, 0.1] });
    const y = createTransform(cfg, { normalize: false })(img);
    const v = y.arraySync() as number[][][];
    expect(y.shape).toEqual([16, 16, 3]);
    expect(v[0][0]).toEqual([128, 64, 26]);
    expect(v[8][8]).toEqual([200, 200, 200]);
    expect(v[3][8]).toEqual([128, 64, 26]);
    expect(v[4][8]).toEqual([200, 200, 200]);
    tf.dispose([img, y]);
  });
  it('rejects what is not a 0..255 RGB image', () => {
    const f = createTransform(resolveDataConfig({}));
    const unit = tf.fill([8, 8, 3], 0.5) as tf.Tensor3D;
    const gray = tf.zeros([8, 8, 1], 'int32') as tf.Tensor3D;
    expect(() => f(unit)).toThrow(/integers 0\.\.255/);
    expect(() => f(gray)).toThrow(/\[H, W, 3\]/);
    tf.dispose([unit, gray]);
  });
});
