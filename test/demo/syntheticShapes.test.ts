import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FILL_CLASSES, SHAPE_CLASSES, SHAPES_MEAN, SHAPES_STD, syntheticShapes } from '../../src/data/syntheticShapes.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';

describe('syntheticShapes', () => {
  it('is deterministic per (seed, index), whatever the order of generation', () => {
    const a = syntheticShapes({ imageSize: 24, seed: 7 });
    const b = syntheticShapes({ imageSize: 24, seed: 7 });
    const late = b.render(9);
    b.render(3);
    expect(Buffer.compare(Buffer.from(a.render(9).buffer), Buffer.from(late.buffer))).toBe(0);
    const other = syntheticShapes({ imageSize: 24, seed: 8 }).render(9);
    let diff = 0;
    for (let i = 0; i < other.length; i++) diff = Math.max(diff, Math.abs(other[i] - late[i]));
    expect(diff).toBeGreaterThan(0.1);
    expect(late.length).toBe(24 * 24 * 3);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...late)).toBeLessThanOrEqual(1);
  });

  it('cycles through the classes, so any numClasses consecutive images are balanced', () => {
    const ds = syntheticShapes({ numClasses: 4 });
    expect(Array.from({ length: 8 }, (_, i) => ds.label(i))).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    expect(ds.classNames).toEqual(SHAPE_CLASSES.slice(0, 4));
    expect(syntheticShapes({ task: 'fill' }).classNames).toEqual([...FILL_CLASSES]);
  });

  it('draws the shape: the object covers a plausible share of the image and differs from the background', () => {
    // a plain-colour image (textures off): the most common colour is the background, the rest is the shape
    const ds = syntheticShapes({ imageSize: 32, seed: 3, textures: false });
    for (let i = 0; i < 12; i++) {
      const im = ds.render(i);
      const key = (p: number) => [0, 1, 2].map((k) => Math.round(im[p * 3 + k] * 8)).join(',');
      const counts = new Map<string, number>();
      for (let p = 0; p < 32 * 32; p++) counts.set(key(p), (counts.get(key(p)) ?? 0) + 1);
      const bgKey = [...counts.entries()].sort((x, y) => y[1] - x[1])[0][0];
      let far = 0;
      const bg = bgKey.split(',').map(Number);
      for (let p = 0; p < 32 * 32; p++) if ([0, 1, 2].some((k) => Math.abs(Math.round(im[p * 3 + k] * 8) - bg[k]) > 1)) far++;
      expect(far / (32 * 32), `image ${i} (${ds.classNames[ds.label(i)]})`).toBeGreaterThan(0.04);
      expect(far / (32 * 32)).toBeLessThan(0.8);
    }
  });

  it('rejects bad options with a clear error', () => {
    expect(() => syntheticShapes({ numClasses: 9 })).toThrow(/numClasses=9: expected an integer in 2..6/);
    expect(() => syntheticShapes({ imageSize: 4 })).toThrow(/imageSize=4/);
    expect(() => syntheticShapes().label(-1)).toThrow(/image index -1/);
    expect(() => syntheticShapes({ task: 'colour' as 'shape' })).toThrow(/task='colour'/);
  });
});

for (const backend of BACKENDS) {
  describe(`syntheticShapes.batch on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    it('normalises each rendered image with (x - mean) / std and returns int32 labels', () => {
      const ds = syntheticShapes({ imageSize: 16, seed: 1 });
      const before = tf.memory().numTensors;
      const { images, labels } = ds.batch([5, 2]);
      expect(images.shape).toEqual([2, 16, 16, 3]);
      expect(labels.dtype).toBe('int32');
      expect(Array.from(labels.dataSync())).toEqual([ds.label(5), ds.label(2)]);
      const v = images.dataSync();
      const raw = ds.render(2);
      let err = 0;
      for (let p = 0; p < 16 * 16 * 3; p++)
        err = Math.max(err, Math.abs(v[16 * 16 * 3 + p] - (raw[p] - SHAPES_MEAN[p % 3]) / SHAPES_STD[p % 3]));
      expect(err).toBeLessThan(1e-6);
      tf.dispose([images, labels]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
