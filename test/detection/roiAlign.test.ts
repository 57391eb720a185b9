import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiScaleRoiAlign, roiAlign } from '../../src/layers/detection/index.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { expectClose, parityLog } from './detHelpers.js';

const toNchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);

for (const backend of BACKENDS) {
  describe(`roi_align fixture on ${backend}`, () => {
    let fx: Fixture;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('roi_align');
    });
    afterAll(() => {
      fx.dispose();
      console.log(`roi_align ${backend}`, JSON.stringify(parityLog));
    });

    it('every roi_align variant (borders, outside, tiny and zero-width boxes, adaptive sampling, aligned)', () => {
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      for (const v of fx.case.config.variants as {
        name: string;
        outputSize: [number, number];
        spatialScale: number;
        samplingRatio: number;
        aligned: boolean;
        boundary?: boolean;
      }[]) {
        const rois = (v.boundary ? fx.io.boundary_rois : fx.io.rois) as tf.Tensor2D;
        const y = roiAlign(x, rois, {
          outputSize: v.outputSize,
          spatialScale: v.spatialScale,
          samplingRatio: v.samplingRatio,
          aligned: v.aligned,
        });
        const yc = toNchw(y);
        expectClose(fx, `roi_align.${v.name}`, yc);
        tf.dispose([y, yc]);
      }
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
    });

    it('per-image box lists give the same result as [K, 5] rois', () => {
      const x = nchwToNhwc(fx.io.input);
      const r = fx.io.rois.arraySync() as number[][];
      const lists = [0, 1].map((b) =>
        tf.tensor2d(
          r.filter((row) => row[0] === b).map((row) => row.slice(1)),
          undefined,
          'float32',
        ),
      );
      const order = [0, 1].flatMap((b) =>
        r
          .map((row, i) => [row[0], i])
          .filter(([bb]) => bb === b)
          .map(([, i]) => i),
      );
      const a = roiAlign(x, lists, { outputSize: 2, spatialScale: 1 });
      const ref = roiAlign(x, fx.io.rois as tf.Tensor2D, { outputSize: 2, spatialScale: 1 });
      const refOrdered = tf.gather(ref, order);
      expect(Array.from(a.dataSync())).toEqual(Array.from(refOrdered.dataSync()));
      tf.dispose([x, ...lists, a, ref, refOrdered]);
    });

    it('MultiScaleRoIAlign (name filter, inferred scales, level mapping)', () => {
      const names = fx.case.multiscale_feature_names as string[];
      const feats = new Map(names.map((n) => [n, nchwToNhwc(fx.io[`ms.features.${n}`])]));
      const cfg = fx.case.config.multiscale;
      const pooler = multiScaleRoiAlign(cfg);
      const boxes = [fx.io['ms.boxes.0'], fx.io['ms.boxes.1']] as tf.Tensor2D[];
      const sizes = fx.case.multiscale_image_sizes as [number, number][];
      const before = tf.memory().numTensors;
      const out = pooler.forward(feats, boxes, sizes);
      const lv = pooler.levels(feats, boxes, sizes);
      expect(pooler.setup([...feats.values()].slice(0, 4), sizes).scales).toEqual(fx.case.multiscale_scales);
      const oc = toNchw(out);
      expectClose(fx, 'ms.output', oc);
      expectClose(fx, 'ms.levels', lv);
      tf.dispose([out, lv, oc]);
      expect(tf.memory().numTensors).toBe(before);
      feats.forEach((t) => t.dispose());
    });

    it('gradient w.r.t. the features matches finite differences (odd sizes)', () => {
      const x = tf.randomNormal([2, 7, 9, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
      const rois = tf.tensor2d([
        [0, 0.3, 1.2, 6.1, 5.7],
        [1, -0.8, 2.1, 4.4, 8.9],
        [1, 2.2, 0.4, 9.3, 3.3],
      ]);
      const w = tf.randomNormal([3, 3, 3, 3], 0, 1, 'float32', 12);
      for (const opts of [
        { outputSize: 3, samplingRatio: 2 },
        { outputSize: [3, 2] as [number, number], samplingRatio: -1, aligned: true, spatialScale: 0.8 },
      ]) {
        const loss = (f: tf.Tensor) =>
          tf.sum(
            tf.mul(
              roiAlign(f as tf.Tensor4D, rois, opts)
                .reshape([3, -1])
                .slice([0, 0], [3, 3 * (opts.outputSize === 3 ? 9 : 6)])
                .reshape([-1]),
              w.reshape([-1]).slice(0, 3 * 3 * (opts.outputSize === 3 ? 9 : 6)),
            ),
          ) as tf.Scalar;
        const g = tf.grad(loss)(x);
        const gv = g.dataSync();
        const xv = Float64Array.from(x.dataSync());
        let maxErr = 0;
        const eps = 1e-2;
        for (const idx of [0, 5, 17, 40, 77, 100, 150, 200, 233, 300, 377]) {
          const plus = xv.slice();
          plus[idx] += eps;
          const minus = xv.slice();
          minus[idx] -= eps;
          const lp = tf.tidy(() => loss(tf.tensor4d(Float32Array.from(plus), x.shape)).dataSync()[0]);
          const lm = tf.tidy(() => loss(tf.tensor4d(Float32Array.from(minus), x.shape)).dataSync()[0]);
          maxErr = Math.max(maxErr, Math.abs((lp - lm) / (2 * eps) - gv[idx]));
        }
        expect(maxErr).toBeLessThan(2e-3);
        expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
        g.dispose();
      }
      tf.dispose([x, rois, w]);
    });

    it('bad input raises VisBackbonesError', () => {
      const x = nchwToNhwc(fx.io.input);
      expect(() => roiAlign(x, tf.zeros([2, 4]) as tf.Tensor2D, { outputSize: 2 })).toThrow(VisBackbonesError);
      expect(() => roiAlign(x, tf.tensor2d([[5, 0, 0, 1, 1]]), { outputSize: 2 })).toThrow(VisBackbonesError);
      expect(() => roiAlign(x, fx.io.rois as tf.Tensor2D, { outputSize: 0 })).toThrow(VisBackbonesError);
      x.dispose();
    });
  });
}
