import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { Mixup } from '../../src/data/mixup.js';
import { parseRandAugment, randAugmentOps } from '../../src/data/randAugment.js';
import { DataRng } from '../../src/data/rng.js';
import { randomResizedCropParams } from '../../src/data/trainTransform.js';
import { createTransform } from '../../src/data/transforms.js';
import { expectError } from '../helpers/errors.js';
import { loadFixture } from '../helpers/fixtures.js';

describe('training transforms (timm transforms_imagenet_train)', () => {
  let image: tf.Tensor3D;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const fx = loadFixture('eval_transform_coffee');
    image = tf.clone(fx.io.image_png) as tf.Tensor3D;
    fx.dispose();
  });
  const cfg = () => resolveDataConfig('vit_small_patch16_224.augreg_in21k_ft_in1k', { imgSize: 64 });

  it('is seeded: the same seed gives the same outputs, another seed others', () => {
    const run = (seed: number) => {
      const t = createTransform(cfg(), {
        isTraining: true,
        seed,
        autoAugment: 'rand-m9-mstd0.5-inc1',
        reProb: 0.5,
        reMode: 'pixel',
        interpolation: 'random',
      });
      return [0, 1, 2].map(() => {
        const y = t(image);
        const v = Array.from(y.dataSync());
        y.dispose();
        return v;
      });
    };
    const before = tf.memory().numTensors;
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
    expect(a[0]).not.toEqual(a[1]);
    expect(a[0].length).toBe(64 * 64 * 3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a full-image crop without flip or jitter is the plain Pillow resize (squash eval at crop 1)', () => {
    const [h, w] = image.shape;
    const t = createTransform(cfg(), { isTraining: true, seed: 1, scale: [1, 1], ratio: [w / h, w / h], hflip: 0, colorJitter: 0 });
    const ref = createTransform({ ...cfg(), cropPct: 1, cropMode: 'squash', interpolation: 'bilinear' });
    const [a, b] = [t(image), ref(image)];
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([a, b]);
  });

  it('hflip 1 mirrors the crop; normalize false gives uint8 values', () => {
    const [h, w] = image.shape;
    const opts = {
      isTraining: true as const,
      seed: 1,
      scale: [1, 1] as [number, number],
      ratio: [w / h, w / h] as [number, number],
      colorJitter: 0,
      normalize: false,
    };
    const a = createTransform(cfg(), { ...opts, hflip: 0 })(image);
    const b = createTransform(cfg(), { ...opts, hflip: 1 })(image);
    expect(a.dtype).toBe('int32');
    const flipped = tf.reverse(a, 1);
    expect(Array.from(b.dataSync())).toEqual(Array.from(flipped.dataSync()));
    tf.dispose([a, b, flipped]);
  });

  it('RandomResizedCrop params: inside the image, area and aspect within range', () => {
    const rng = new DataRng(3);
    for (let i = 0; i < 200; i++) {
      const [top, left, ch, cw] = randomResizedCropParams(280, 422, [0.08, 1], [3 / 4, 4 / 3], rng);
      expect(top >= 0 && left >= 0 && top + ch <= 280 && left + cw <= 422).toBe(true);
      expect((ch * cw) / (280 * 422)).toBeLessThanOrEqual(1.01);
    }
    // an impossible aspect falls back to the centred crop of the closest aspect
    expect(randomResizedCropParams(100, 400, [0.99, 1], [1, 1], new DataRng(1))).toEqual([0, 150, 100, 100]);
  });

  it('parses RandAugment policies', () => {
    const p = parseRandAugment('rand-m9-mstd0.5-inc1');
    expect(p).toEqual({ magnitude: 9, numLayers: 2, magnitudeStd: 0.5, magnitudeMax: 10, prob: 0.5, increasing: true });
    expect(randAugmentOps(p).length).toBe(15);
    expect(randAugmentOps(p)).toContain('SolarizeIncreasing');
    expect(parseRandAugment('rand-m7-n3-mstdinf').magnitudeStd).toBe(Infinity);
    expectError(() => parseRandAugment('original-mstd0.5'), /RandAugment/);
  });

  it('Mixup / CutMix: smoothed targets mixed with lambda', () => {
    const x = tf.randomUniform([4, 8, 8, 3]) as tf.Tensor4D;
    const labels = tf.tensor1d([0, 1, 2, 3], 'int32');
    const mix = new Mixup({ numClasses: 5, seed: 2, mixupAlpha: 0, cutmixAlpha: 1 });
    const { x: mx, y, lam } = mix.apply(x, labels);
    expect(mx.shape).toEqual([4, 8, 8, 3]);
    const rows = y.arraySync() as number[][];
    for (const r of rows) expect(r.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // the first image's label keeps weight lam (+ smoothing), the flipped partner's 1 - lam
    expect(rows[0][0]).toBeCloseTo(lam * 0.9 + 0.02, 5);
    expect(rows[0][3]).toBeCloseTo((1 - lam) * 0.9 + 0.02, 5);
    // corrected lambda = the share of pixels kept from the image itself
    const same = tf.tidy(() => tf.equal(mx, x).all(-1).sum([1, 2]).arraySync() as number[]);
    expect(same[0] / 64).toBeCloseTo(lam, 5);
    tf.dispose([x, labels, mx, y]);
  });
});
