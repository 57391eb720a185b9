import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiScaleRoiAlign, roiAlign } from '../../src/layers/detection/index.js';
import { roiAlignUsesJs, RoiAlignPath, setRoiAlignPath } from '../../src/layers/detection/roiSampling.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';
import { expectClose, parityLog } from './detHelpers.js';

const toNchw = (t: tf.Tensor) => tf.transpose(t, [0, 3, 1, 2]);

// both ways of applying the samples: the JavaScript loop (what cpu / wasm use) and the tf-ops plan (webgl / webgpu)
for (const [backend, path] of BACKENDS.flatMap((b) => (['js', 'ops'] as RoiAlignPath[]).map((p) => [b, p] as const))) {
  describe(`roi_align fixture on ${backend}, ${path} path`, () => {
    let fx: Fixture;
    let old: RoiAlignPath;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('roi_align');
      old = setRoiAlignPath(path);
    });
    afterAll(() => {
      setRoiAlignPath(old);
      fx.dispose();
      console.log(`roi_align ${backend} ${path}`, JSON.stringify(parityLog));
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

    it('gradient of MultiScaleRoIAlign w.r.t. every level matches finite differences, no leaked tensors', () => {
      const maps = [12, 6, 3].map((s, i) => tf.randomNormal([1, s, s, 2], 0, 1, 'float32', 20 + i) as tf.Tensor4D);
      const pooler = multiScaleRoiAlign({
        featmapNames: ['a', 'b', 'c'],
        outputSize: 2,
        samplingRatio: 2,
        canonicalScale: 8,
        canonicalLevel: 3,
      });
      const boxes = [
        tf.tensor2d([
          [1, 1, 5, 4],
          [0.5, 2, 12.5, 12],
          [3, 3, 47, 40],
          [30, 30, 60, 50],
        ]),
      ];
      const before = tf.memory().numTensors;
      const lv = pooler.levels({ a: maps[0], b: maps[1], c: maps[2] }, boxes, [[48, 48]]);
      const used = new Set(Array.from(lv.dataSync()));
      lv.dispose();
      expect(used.size).toBe(3);
      const w = tf.randomNormal([4, 2, 2, 2], 0, 1, 'float32', 30);
      const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(pooler.pool([a, b, c] as tf.Tensor4D[], boxes, [[48, 48]]), w)) as tf.Scalar;
      const gs = tf.grads(loss)(maps);
      for (let l = 0; l < 3; l++) {
        const xv = Float64Array.from(maps[l].dataSync());
        const gv = gs[l].dataSync();
        let maxErr = 0;
        for (let idx = 0; idx < xv.length; idx += 3) {
          const at = (d: number) => {
            const v = xv.slice();
            v[idx] += d;
            return tf.tidy(() => {
              const args = maps.map((m, j) => (j === l ? tf.tensor4d(Float32Array.from(v), m.shape) : m));
              return loss(args[0], args[1], args[2]).dataSync()[0];
            });
          };
          maxErr = Math.max(maxErr, Math.abs((at(1e-2) - at(-1e-2)) / 2e-2 - gv[idx]));
        }
        expect(maxErr).toBeLessThan(2e-3);
        expect(tf.tidy(() => tf.max(tf.abs(gs[l])).dataSync()[0])).toBeGreaterThan(0);
      }
      tf.dispose([...gs, w]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([...maps, ...boxes]);
    });

    it('no boxes: an empty [0, h, w, C] result and a zero gradient', () => {
      const x = tf.randomNormal([1, 5, 5, 3], 0, 1, 'float32', 40) as tf.Tensor4D;
      const rois = tf.zeros([0, 5]) as tf.Tensor2D;
      const before = tf.memory().numTensors;
      const y = roiAlign(x, rois, { outputSize: 2 });
      expect(y.shape).toEqual([0, 2, 2, 3]);
      const g = tf.grad((f: tf.Tensor) => tf.sum(roiAlign(f as tf.Tensor4D, rois, { outputSize: 2 })))(x);
      expect(g.shape).toEqual(x.shape);
      expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
      tf.dispose([y, g]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, rois]);
    });

    it('an inverted box with aligned=True and adaptive sampling has no samples: zeros (the kernel loops over a negative grid)', () => {
      const x = tf.randomNormal([1, 6, 6, 2], 0, 1, 'float32', 41) as tf.Tensor4D;
      const rois = tf.tensor2d([
        [0, 4, 1, 1, 5],
        [0, 1, 5, 4, 1],
        [0, 1, 1, 4, 5],
      ]);
      const y = roiAlign(x, rois, { outputSize: 2, samplingRatio: -1, aligned: true });
      const v = y.dataSync();
      expect(Array.from(v.subarray(0, 16)).every((e) => e === 0)).toBe(true);
      expect(Array.from(v.subarray(16)).some((e) => e !== 0)).toBe(true);
      tf.dispose([x, rois, y]);
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

for (const backend of BACKENDS) {
  describe(`roi_align JavaScript loop against the tf-ops plan on ${backend}`, () => {
    beforeAll(() => useBackend(backend));
    afterAll(() => void setRoiAlignPath('auto'));

    it('the JavaScript loop is what cpu and wasm use', () => {
      setRoiAlignPath('auto');
      expect(roiAlignUsesJs()).toBe(true);
    });

    it('same values and gradients (many boxes, borders, both alignments, fixed and adaptive sampling)', () => {
      const x = tf.randomNormal([2, 13, 11, 5], 0, 1, 'float32', 50) as tf.Tensor4D;
      const k = 40;
      const r = new Float32Array(5 * k);
      let seed = 7;
      const rand = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
      for (let i = 0; i < k; i++) {
        const x1 = rand() * 30 - 4;
        const y1 = rand() * 34 - 4;
        r.set([i % 2, x1, y1, x1 + rand() * 14, y1 + rand() * 14], 5 * i);
      }
      const rois = tf.tensor2d(r, [k, 5]);
      const w = tf.randomNormal([k, 3, 4, 5], 0, 1, 'float32', 51);
      for (const opts of [
        { outputSize: [3, 4] as [number, number], spatialScale: 0.5, samplingRatio: 2, aligned: false },
        { outputSize: [3, 4] as [number, number], spatialScale: 0.5, samplingRatio: -1, aligned: false },
        { outputSize: [3, 4] as [number, number], spatialScale: 0.5, samplingRatio: 3, aligned: true },
        { outputSize: [3, 4] as [number, number], spatialScale: 0.5, samplingRatio: 0, aligned: true },
      ]) {
        const run = (p: RoiAlignPath) => {
          setRoiAlignPath(p);
          const y = roiAlign(x, rois, opts);
          const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(roiAlign(f as tf.Tensor4D, rois, opts), w)))(x);
          const out = [Float32Array.from(y.dataSync()), Float32Array.from(g.dataSync())];
          tf.dispose([y, g]);
          return out;
        };
        const [yj, gj] = run('js');
        const [yo, go] = run('ops');
        const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
        expect(maxDiff(yj, yo)).toBeLessThan(1e-6);
        expect(maxDiff(gj, go)).toBeLessThan(1e-5);
        expect(yj.some((v) => v !== 0) && gj.some((v) => v !== 0)).toBe(true);
      }
      tf.dispose([x, rois, w]);
    });
  });
}
