import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import { semaskSwin, SemaskSwinConfig } from '../../src/models/semaskSwin/index.js';
import { semaskSegmentor, SemaskSegmentor } from '../../src/tasks/semaskSegmentor.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { stepAndCheckGradients } from '../helpers/training.js';

const K = 4;
const SIZE = 32;

/** mulberry32: a seeded generator for the synthetic set. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A small synthetic segmentation set: on a noisy textured background (class 0), a disc (1), a square (2)
 * and a striped band (3) at random places and sizes, each with a class-typical but noisy colour.
 */
function syntheticSegmentation(n: number, seed: number, size = 32): { images: tf.Tensor4D; labels: tf.Tensor3D } {
  const SIZE = size;
  const r = rng(seed);
  const img = new Float32Array(n * SIZE * SIZE * 3);
  const lab = new Int32Array(n * SIZE * SIZE);
  const colours = [
    [0.5, 0.5, 0.5],
    [0.8, 0.3, 0.3],
    [0.3, 0.7, 0.35],
    [0.35, 0.4, 0.8],
  ];
  for (let b = 0; b < n; b++) {
    const u = SIZE / 32;
    const cx = (6 + r() * 20) * u,
      cy = (6 + r() * 20) * u,
      rad = (4 + r() * 4) * u;
    const sx = r() * 18 * u,
      sy = r() * 18 * u,
      side = (7 + r() * 7) * u;
    const by = r() * 24 * u,
      bh = (4 + r() * 4) * u;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        let c = 0;
        if (y >= by && y < by + bh && Math.floor(x / 2) % 2 === 0) c = 3;
        if (x >= sx && x < sx + side && y >= sy && y < sy + side) c = 2;
        if ((x - cx) ** 2 + (y - cy) ** 2 < rad * rad) c = 1;
        const p = (b * SIZE + y) * SIZE + x;
        lab[p] = c;
        for (let ch = 0; ch < 3; ch++) img[p * 3 + ch] = (colours[c][ch] + 0.25 * (r() - 0.5) - 0.5) / 0.25;
      }
    }
  }
  return { images: tf.tensor4d(img, [n, SIZE, SIZE, 3]), labels: tf.tensor3d(lab, [n, SIZE, SIZE], 'int32') };
}

/** Mean IoU over the classes present in the predictions or labels. */
function meanIoU(pred: Int32Array, lab: Int32Array): number {
  const inter = new Array(K).fill(0),
    union = new Array(K).fill(0);
  for (let i = 0; i < pred.length; i++) {
    for (let c = 0; c < K; c++) {
      const a = pred[i] === c,
        b = lab[i] === c;
      if (a && b) inter[c]++;
      if (a || b) union[c]++;
    }
  }
  const ious = inter.map((v, c) => (union[c] ? v / union[c] : NaN)).filter((v) => !Number.isNaN(v));
  return ious.reduce((a, b) => a + b, 0) / ious.length;
}

const BACKBONE: SemaskSwinConfig = {
  embedDim: 16,
  depths: [1, 1, 1, 1],
  numHeads: [1, 2, 2, 4],
  windowSize: 4,
  semWindowSize: 4,
  numCls: K,
  semGlobalStages: [2, 3],
  dropPathRate: 0,
};

function build(semantic: boolean): SemaskSegmentor {
  manualSeed(11);
  const backbone = semaskSwin({ ...BACKBONE, numSemBlocks: semantic ? [1, 1, 1, 1] : [0, 0, 0, 0] });
  return semaskSegmentor({ backbone, numClasses: K, channels: 16, headNorm: 'none' });
}

for (const backend of BACKENDS) {
  describe(`SeMask-FPN segmentor on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('one training step reaches every variable (semantic decoder included) and leaks nothing', () => {
      const seg = build(true);
      // gamma starts at 0 (no gradient reaches the semantic attention's projections at the first step)
      for (const [n, p] of seg.namedParameters()) if (n.endsWith('.gamma')) tf.tidy(() => p.variable.assign(tf.fill([1], 0.5)));
      // 64 px, so that the last stage has more than one token (over one token the prior's softmax is
      // constant and mlp_cls_k gets no gradient, as in the reference)
      const { images, labels } = syntheticSegmentation(2, 3, 64);
      const opt = tf.train.sgd(0.05);
      const before = tf.memory().numTensors;
      const l = seg.losses(images, labels, { training: true });
      expect(l.semantic).not.toBeNull();
      expect(Math.abs(l.total.dataSync()[0] - l.decode.dataSync()[0] - l.semantic!.dataSync()[0])).toBeLessThan(1e-5);
      tf.dispose([l.total, l.decode, l.semantic!]);
      stepAndCheckGradients(seg, () => seg.loss(images, labels, { training: true }), opt, {
        label: `segmentor on ${backend}`,
        expectUpdate: true,
      });
      const out = seg.forward(images);
      expect(out.logits.shape).toEqual([2, 64, 64, K]);
      expect(out.semanticLogits!.shape).toEqual([2, 64, 64, K]);
      tf.dispose([out.logits, out.semanticLogits!]);
      expect(tf.memory().numTensors).toBe(before);
      expect(Object.keys(Object.fromEntries(seg.namedParameters())).some((k) => k.startsWith('decode_head.conv_seg.'))).toBe(true);
      tf.dispose([images, labels]);
      opt.dispose();
      seg.dispose();
    });
  });
}

describe('SeMask-FPN segmentor training (wasm)', () => {
  beforeAll(async () => {
    await useBackend('wasm');
  });

  it('trains on a synthetic segmentation set; mIoU with and without semantic layers at the same steps', () => {
    const train = syntheticSegmentation(32, 1);
    const val = syntheticSegmentation(16, 2);
    const steps = 60;
    const batch = 8;
    const result: Record<string, { loss0: number; lossEnd: number; miou: number }> = {};
    for (const semantic of [true, false]) {
      const seg = build(semantic);
      const opt = tf.train.adam(2e-3);
      const losses: number[] = [];
      let count = -1;
      for (let s = 0; s < steps; s++) {
        const i0 = (s * batch) % 32;
        const x = train.images.slice([i0, 0, 0, 0], [batch, -1, -1, -1]);
        const y = train.labels.slice([i0, 0, 0], [batch, -1, -1]);
        const l = opt.minimize(() => seg.loss(x, y, { training: true }), true, seg.trainableVariables()) as tf.Scalar;
        losses.push(l.dataSync()[0]);
        tf.dispose([l, x, y]);
        if (s === 1) count = tf.memory().numTensors;
        if (s > 1) expect(tf.memory().numTensors, `step ${s} leaked`).toBe(count);
      }
      const out = seg.forward(val.images);
      const pred = tf.tidy(() => tf.argMax(out.logits, 3).dataSync() as Int32Array);
      const miou = meanIoU(pred, val.labels.dataSync() as Int32Array);
      tf.dispose([out.logits, ...(out.semanticLogits ? [out.semanticLogits] : [])]);
      const avg = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
      result[semantic ? 'semask' : 'plain'] = { loss0: avg(losses.slice(0, 5)), lossEnd: avg(losses.slice(-5)), miou };
      expect(avg(losses.slice(-5))).toBeLessThan(avg(losses.slice(0, 5)));
      opt.dispose();
      seg.dispose();
    }
    console.log(`segmentor after ${steps} steps: ${JSON.stringify(result)}`);
    // both learn the task well beyond chance (4 classes)
    expect(result.semask.miou).toBeGreaterThan(0.3);
    expect(result.plain.miou).toBeGreaterThan(0.3);
    tf.dispose([train.images, train.labels, val.images, val.labels]);
  }, 600_000);

  it('rejects mismatched classes and labels', () => {
    const backbone = semaskSwin({ ...BACKBONE, numCls: 5 });
    expectError(() => semaskSegmentor({ backbone, numClasses: K }), /semantic maps have 5 classes but numClasses is 4/);
    const seg = build(true);
    const x = tf.zeros([1, SIZE, SIZE, 3]);
    const bad = tf.zeros([1, SIZE, SIZE, 1], 'int32');
    expectError(() => seg.losses(x, bad), /labels must be \[B, H, W\] class indices/);
    tf.dispose([x, bad]);
    seg.dispose();
    backbone.dispose();
  });
});
