import * as tf from '@tensorflow/tfjs';
import { batchedNms, multiScaleRoiAlign, roiAlign, RoiAlignOptions } from '../../src/layers/detection/index.js';
import { RoiAlignPath, setRoiAlignPath } from '../../src/layers/detection/roiSampling.js';
import type { BenchSuite } from '../harness.js';
import { cpuSeconds, median } from '../harness.js';

/**
 * The detection ops outside the dense layers, at Mask R-CNN sizes (`npm run bench -- --only detection_ops --batches 1`):
 * batched NMS of 5000 boxes over 80 classes; RoIAlign of 512 boxes on a 64x64x256 map (stride 8, boxes
 * 8-96 px in a 576 px frame, some crossing the border) at 7x7 (box head) and 14x14 (mask head), sampling
 * ratio 2 and adaptive, forward alone and forward + gradient w.r.t. the features; MultiScaleRoIAlign of
 * the same boxes over a 512 px FPN (P2-P5, 256 channels). Every call reads its result back.
 *
 * Each row: median ms per call, wall and CPU time of this process (`process.cpuUsage()`: on a shared
 * machine the wall time also counts the other processes), and its CPU time over that of one 1024^3
 * matmul (`tf.matMul` of two 1024x1024, read back) timed with it, the calls interleaved round by round
 * after one warm-up each. `--detops-reps N` sets the rounds (default 5); `--detops-ops` also times every
 * RoIAlign row on the tf-ops path (what webgl / webgpu run), interleaved with the default path.
 */
const suite: BenchSuite = {
  name: 'detection_ops',
  async run(ctx) {
    const i = ctx.args.indexOf('--detops-reps');
    const reps = i >= 0 ? Number(ctx.args[i + 1]) : 5;
    const paths: RoiAlignPath[] = ctx.args.includes('--detops-ops') ? ['auto', 'ops'] : ['auto'];
    const cpu = cpuSeconds;
    type Timed = { wall: number; cpu: number };
    /** Median wall and CPU seconds per call of each of `fns` (which must dispose what they make), interleaved. */
    const measure = (fns: (() => void)[]): Timed[] => {
      fns.forEach((fn) => fn());
      const wall: number[][] = fns.map(() => []);
      const cpus: number[][] = fns.map(() => []);
      for (let r = 0; r < reps; r++) {
        fns.forEach((fn, k) => {
          const t0 = performance.now();
          const c0 = cpu();
          fn();
          wall[k].push((performance.now() - t0) / 1000);
          cpus[k].push(cpu() - c0);
        });
      }
      return fns.map((_, k) => ({ wall: median(wall[k]), cpu: median(cpus[k]) }));
    };
    const a = tf.randomNormal([1024, 1024], 0, 1, 'float32', 1);
    const b = tf.randomNormal([1024, 1024], 0, 1, 'float32', 2);
    const matmul = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    const rows: { name: string; t?: Timed; mm?: Timed; note?: string }[] = [];
    /** Time `fn` on every path of this run (`onPath`: false for the RoIAlign-free rows), interleaved with the matmul. */
    const row = (name: string, fn: () => void, onPath = true, skipOps?: string) => {
      const ps = onPath ? paths : (['auto'] as RoiAlignPath[]);
      const run = ps.filter((p) => !(p === 'ops' && skipOps));
      const tag = (p: RoiAlignPath) => (p === 'auto' ? '' : ` (${p} path)`);
      const onP = (p: RoiAlignPath) => () => {
        const old = setRoiAlignPath(p);
        try {
          fn();
        } finally {
          setRoiAlignPath(old);
        }
      };
      try {
        const [mm, ...ts] = measure([matmul, ...run.map(onP)]);
        run.forEach((p, k) => rows.push({ name: name + tag(p), t: ts[k], mm }));
      } catch (e) {
        rows.push({ name, note: `failed: ${(e as Error).message.split('\n')[0]}` });
      }
      if (skipOps && ps.includes('ops')) rows.push({ name: name + tag('ops'), note: `skipped: ${skipOps}` });
    };

    const n = 5000;
    const xy = tf.randomUniform([n, 2], 0, 480, 'float32', 1);
    const wh = tf.randomUniform([n, 2], 8, 96, 'float32', 2);
    const boxes = tf.concat([xy, tf.add(xy, wh)], 1) as tf.Tensor2D;
    const scores = tf.randomUniform([n], 0, 1, 'float32', 3) as tf.Tensor1D;
    const idxs = tf.randomUniform([n], 0, 80, 'int32', 4) as tf.Tensor1D;
    row(`batched nms ${n} boxes, 80 classes`, () => batchedNms(boxes, scores, idxs, 0.5).dispose(), false);

    const fm = tf.randomNormal([1, 64, 64, 256], 0, 1, 'float32', 5) as tf.Tensor4D;
    const b512 = tf.slice(boxes, [0, 0], [512, 4]) as tf.Tensor2D;
    const rois = tf.concat([tf.zeros([512, 1]), b512], 1) as tf.Tensor2D;
    const levels = [128, 64, 32, 16].map((s, l) => tf.randomNormal([1, s, s, 256], 0, 1, 'float32', 7 + l) as tf.Tensor4D);
    const feats = new Map(levels.map((t, l) => [String(l), t]));
    // the tf-ops plan gathers (bins x most entries of a bin) channel rows: at 14x14, sampling 2 that is
    // 512 * 196 * 16 * 256 floats (1.6 GB), past what the wasm heap takes ('memory access out of bounds',
    // which leaves the backend unusable): those rows are skipped on that path
    const tooBig = (size: number, samplingRatio: number) =>
      ctx.backend === 'wasm' && size === 14 && samplingRatio === 2
        ? 'the tf-ops plan would gather 1.6 GB (512 x 196 bins x 16 rows x 256 channels), past the wasm heap'
        : undefined;
    for (const [size, samplingRatio] of [
      [7, 2],
      [7, -1],
      [14, 2],
      [14, -1],
    ]) {
      const opts: RoiAlignOptions = { outputSize: size, spatialScale: 0.125, samplingRatio, aligned: false };
      const what = `roi_align 512 boxes ${size}x${size} sampling ${samplingRatio > 0 ? samplingRatio : 'adaptive'} on 64x64x256`;
      const skip = tooBig(size, samplingRatio);
      row(
        what,
        () => {
          const y = roiAlign(fm, rois, opts);
          y.dataSync();
          y.dispose();
        },
        true,
        skip,
      );
      if (samplingRatio !== 2) continue;
      const dy = tf.randomNormal([512, size, size, 256], 0, 1, 'float32', 6);
      const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(roiAlign(x as tf.Tensor4D, rois, opts), dy)));
      row(
        `${what}, forward + gradient`,
        () => {
          const gx = g(fm);
          gx.dataSync();
          gx.dispose();
        },
        true,
        skip,
      );
      dy.dispose();
    }
    for (const size of [7, 14]) {
      const pooler = multiScaleRoiAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: size, samplingRatio: 2 });
      row(
        `multi_scale_roi_align 512 boxes ${size}x${size} sampling 2 on P2-P5 of 512 px`,
        () => {
          const y = pooler.forward(feats, [b512], [[512, 512]]);
          y.dataSync();
          y.dispose();
        },
        true,
        tooBig(size, 2),
      );
    }
    tf.dispose([xy, wh, boxes, scores, idxs, fm, b512, rois, ...levels, a, b]);

    const ms = (s: number) => `${(1000 * s).toFixed(1)} ms`;
    for (const r of rows) {
      ctx.report({
        name: r.name,
        batch: 1,
        stepsPerSec: r.t ? 1 / r.t.wall : undefined,
        note:
          r.t && r.mm
            ? `${ms(r.t.wall)} wall, ${ms(r.t.cpu)} CPU = ${(r.t.cpu / r.mm.cpu).toFixed(2)} x matmul 1024^3 (${ms(r.mm.cpu)} CPU, ${ms(r.mm.wall)} wall)`
            : r.note,
      });
    }
  },
};

export default suite;
