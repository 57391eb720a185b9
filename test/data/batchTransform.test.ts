import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchTransformPath, setBatchTransformPath } from '../../src/data/batchTransform.js';
import { resolveDataConfig } from '../../src/data/dataConfig.js';
import { cropU8 } from '../../src/data/imageOps.js';
import { pilResize } from '../../src/data/pilResize.js';
import { DataRng } from '../../src/data/rng.js';
import { tensorToU8 } from '../../src/data/tensorImage.js';
import { randomResizedCropParams, TrainTransformOptions } from '../../src/data/trainTransform.js';
import { createTransform } from '../../src/data/transforms.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { loadFixture } from '../helpers/fixtures.js';

// photographs of different sizes and aspects (colour and grey): a zero-padded batch with per-image sizes
const CASES = ['eval_transform_coffee', 'eval_transform_camera_gray', 'eval_transform_rocket_portrait', 'eval_transform_ihc_wide'];

const OPTION_SETS: Partial<TrainTransformOptions>[] = [
  { colorJitter: 0 },
  { colorJitter: null, interpolation: 'bicubic', reProb: 1, reMode: 'pixel', reCount: 2, scale: [0.01, 1] },
  { colorJitter: 0, interpolation: 'random', reProb: 0.5, reMode: 'rand', hflip: 0.8 },
  { autoAugment: 'rand-m9-mstd0.5-inc1', interpolation: 'random', reProb: 0.5, reMode: 'pixel' },
  {}, // timm's defaults: colour jitter 0.4
  { normalize: false, colorJitter: 0, interpolation: 'random' },
];

for (const [backend, impl] of BACKENDS.flatMap((b) => (['ops', 'js'] as const).map((p) => [b, p] as const))) {
  describe(`batched training transform (${backend}, ${impl} path)`, () => {
    let images: tf.Tensor3D[];
    let batch: tf.Tensor4D;
    let sizes: [number, number][];
    let previous: BatchTransformPath;
    beforeAll(async () => {
      await useBackend(backend);
      previous = setBatchTransformPath(impl);
      images = CASES.map((name) => {
        const fx = loadFixture(name);
        const im = tf.clone(fx.io.image_png) as tf.Tensor3D;
        fx.dispose();
        return im;
      });
      sizes = images.map((im) => [im.shape[0], im.shape[1]]);
      const h = Math.max(...sizes.map((s) => s[0]));
      const w = Math.max(...sizes.map((s) => s[1]));
      batch = tf.tidy(() =>
        tf.stack(
          images.map((im) =>
            tf.pad(im, [
              [0, h - im.shape[0]],
              [0, w - im.shape[1]],
              [0, 0],
            ]),
          ),
        ),
      ) as tf.Tensor4D;
    });
    afterAll(() => {
      tf.dispose([batch, ...images]);
      setBatchTransformPath(previous);
    });
    const cfg = () => resolveDataConfig('vit_small_patch16_224.augreg_in21k_ft_in1k', { imgSize: 48 });

    it("same seed, same crops: each output is Pillow's resize of randomResizedCropParams' crop, drawn in batch order", () => {
      const t = createTransform(cfg(), { isTraining: true, batched: true, seed: 4, hflip: 0, colorJitter: 0, normalize: false });
      const rng = new DataRng(4);
      for (let rep = 0; rep < 2; rep++) {
        const y = t(batch, sizes);
        const got = y.dataSync();
        y.dispose();
        const n = 48 * 48 * 3;
        images.forEach((im, i) => {
          const src = tensorToU8(im);
          const [top, left, ch, cw] = randomResizedCropParams(src.height, src.width, [0.08, 1], [3 / 4, 4 / 3], rng);
          const want = pilResize(cropU8(src, top, left, ch, cw).data, ch, cw, 3, 48, 48, 'bilinear');
          expect(Array.from(got.subarray(i * n, (i + 1) * n)), `image ${i}`).toEqual(Array.from(want));
        });
      }
    });

    for (const opts of OPTION_SETS) {
      it(`equals the per-image transform bit for bit, seed for seed: ${JSON.stringify(opts)}`, () => {
        const perImage = createTransform(cfg(), { isTraining: true, seed: 5, ...opts });
        const batched = createTransform(cfg(), { isTraining: true, seed: 5, batched: true, ...opts });
        expect(batched.batched).toBe(true);
        const before = tf.memory().numTensors;
        // two batches in a row: the generator's state carries over as in the per-image transform
        for (let rep = 0; rep < 2; rep++) {
          const ys = images.map((im) => perImage(im));
          const y = batched(batch, sizes);
          expect(y.shape).toEqual([images.length, 48, 48, 3]);
          expect(y.dtype).toBe(opts.normalize === false ? 'int32' : 'float32');
          const got = y.dataSync();
          const n = 48 * 48 * 3;
          ys.forEach((ref, i) =>
            expect(Array.from(got.subarray(i * n, (i + 1) * n)), `image ${i}, batch ${rep}`).toEqual(Array.from(ref.dataSync())),
          );
          tf.dispose([y, ...ys]);
        }
        expect(tf.memory().numTensors).toBe(before);
      });
    }

    it('int32 input, an unpadded batch, and a kernel wider than 64 taps (a 420-pixel crop to 16)', () => {
      const c = resolveDataConfig('vit_small_patch16_224.augreg_in21k_ft_in1k', { imgSize: 16 });
      const im = images[0];
      const [h, w] = im.shape;
      const opts = { isTraining: true as const, seed: 2, scale: [1, 1] as [number, number], ratio: [w / h, w / h] as [number, number] };
      const x = tf.stack([im, im]) as tf.Tensor4D;
      const perImage = createTransform(c, { ...opts, interpolation: 'bicubic', colorJitter: 0 });
      const batched = createTransform(c, { ...opts, interpolation: 'bicubic', colorJitter: 0, batched: true });
      const before = tf.memory().numTensors;
      const y = batched(x);
      const refs = [perImage(im), perImage(im)];
      expect(Array.from(y.dataSync())).toEqual(refs.flatMap((r) => Array.from(r.dataSync())));
      tf.dispose([y, ...refs]);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });

    it('a full-image crop without flip or jitter is the plain Pillow resize (squash eval at crop 1)', () => {
      const im = images[0];
      const [h, w] = im.shape;
      const t = createTransform(cfg(), {
        isTraining: true,
        batched: true,
        seed: 1,
        scale: [1, 1],
        ratio: [w / h, w / h],
        hflip: 0,
        colorJitter: 0,
      });
      const ref = createTransform({ ...cfg(), cropPct: 1, cropMode: 'squash', interpolation: 'bilinear' });
      const x = im.expandDims(0) as tf.Tensor4D;
      const [a, b] = [t(x), ref(im)];
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b, x]);
    });

    it('bad input: a clear error, no tensor leaked, no draw consumed', () => {
      const t = createTransform(cfg(), { isTraining: true, batched: true, seed: 3, colorJitter: 0 });
      const before = tf.memory().numTensors;
      const x3 = tf.zeros([8, 8, 3]);
      const half = tf.fill([1, 8, 8, 3], 0.5);
      const neg = tf.fill([1, 8, 8, 3], -1, 'int32');
      expectError(() => t(x3 as unknown as tf.Tensor4D), /expected images \[B, H, W, 3\]/);
      expectError(() => t(half as tf.Tensor4D), /integers 0\.\.255/);
      expectError(() => t(neg as tf.Tensor4D), /integers 0\.\.255/);
      expectError(() => t(batch, sizes.slice(1)), /3 sizes for a batch of 4/);
      expectError(
        () =>
          t(batch, [
            [1, 1],
            [1, 1],
            [1, 1],
            [10000, 1],
          ]),
        /size \[10000, 1\] of image 3/,
      );
      tf.dispose([x3, half, neg]);
      expect(tf.memory().numTensors).toBe(before);
      // the failed calls drew nothing: the next output is the seed's first
      const fresh = createTransform(cfg(), { isTraining: true, batched: true, seed: 3, colorJitter: 0 });
      const [a, b] = [t(batch, sizes), fresh(batch, sizes)];
      expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      tf.dispose([a, b]);
    });
  });
}
