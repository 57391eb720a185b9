import * as tf from '@tensorflow/tfjs';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { readImage } from '../../src/data/readImage.js';
import { createTransform } from '../../src/data/transforms.js';
import { encodePng } from '../../src/viz/png.js';
import { VisBackbonesError } from '../../src/errors.js';
import { FIXTURES_DIR, compare, loadFixture, nchwToNhwc, type Fixture } from '../helpers/fixtures.js';

const CASES = readdirSync(FIXTURES_DIR)
  .filter((d) => d.startsWith('eval_transform_'))
  .sort();

function diff(a: tf.Tensor, b: tf.Tensor): { max: number; mean: number } {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let max = 0;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / x.length };
}

describe('readImage = PIL Image.open(f).convert("RGB")', () => {
  beforeAll(() => tf.setBackend('cpu'));
  for (const name of CASES) {
    describe(name, () => {
      let fx: Fixture;
      beforeAll(() => {
        fx = loadFixture(name);
      });
      afterAll(() => fx.dispose());
      it('file -> readImage -> transform gives the stored tensors', async () => {
        for (const ev of fx.case.evals as Record<string, any>[]) {
          const fmt = ev.input === 'image_png' ? 'png' : 'jpg';
          const img = await readImage(join(FIXTURES_DIR, name, fx.case.files[fmt].file));
          const out = tf.tidy(() => createTransform(resolveDataConfig(ev.dataConfig))(img).expandDims(0));
          const expected = nchwToNhwc(fx.io[ev.key]);
          const r = compare(out, expected, fx.case.atol, fx.case.rtol);
          expect(r.worstExcess, `${ev.key}: ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
          tf.dispose([img, out, expected]);
        }
      });
      for (const fmt of ['png', 'jpg'] as const) {
        it(`${fmt}: identical to the PIL-decoded array`, async () => {
          const file = fx.case.files[fmt];
          if (!file) return;
          const path = join(FIXTURES_DIR, name, file.file);
          const before = tf.memory().numTensors;
          const fromPath = await readImage(path);
          const fromBytes = await readImage(new Uint8Array(readFileSync(path)));
          expect(fromPath.dtype).toBe('int32');
          const d = diff(fromPath, fx.io[file.decoded_tensor]);
          console.log(`${name}/${file.file} (${file.mode_in_file}${file.icc_profile ? ', ICC' : ''}): max ${d.max} mean ${d.mean} levels`);
          expect(d.max).toBe(0);
          expect(diff(fromBytes, fromPath).max).toBe(0);
          tf.dispose([fromPath, fromBytes]);
          expect(tf.memory().numTensors).toBe(before);
        });
      }
    });
  }

  it('drops alpha without compositing and replicates grey (PNG written here)', async () => {
    // 2x2 RGBA: one fully transparent pixel whose RGB must survive
    const rgba = new Uint8Array([10, 20, 30, 255, 40, 50, 60, 0, 70, 80, 90, 128, 200, 210, 220, 255]);
    const t = await readImage(encodePng(rgba, 2, 2, { channels: 4 }));
    expect(Array.from(t.dataSync())).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220]);
    t.dispose();
  });

  it('fails with the source named', async () => {
    const fails = async (p: Promise<unknown>, re: RegExp) => {
      const e = await p.then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(VisBackbonesError);
      expect((e as Error).message).toMatch(re);
    };
    await fails(readImage(new Uint8Array([1, 2, 3, 4])), /cannot decode 4 bytes/);
    await fails(readImage('/no/such/file.png'), /cannot read '\/no\/such\/file.png'/);
    await fails(readImage(new Uint8Array(0)), /empty/);
  });
});
