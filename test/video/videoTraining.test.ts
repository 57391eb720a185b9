/**
 * Training steps of the video path on cpu and wasm: Video Swin + the I3D-style head on the moving-shapes
 * clips, and BEVT pretraining (HOG targets and code-id targets) on mixed video / image batches. Every
 * variable gets a gradient, the loss falls, no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { syntheticVideo } from '../../src/data/syntheticVideo.js';
import { videoClsHead, VideoClsHead } from '../../src/heads/videoHead.js';
import { manualSeed } from '../../src/layers/init.js';
import { ForwardOptions, Module } from '../../src/layers/module.js';
import { SwinTransformer3D, videoSwin } from '../../src/models/videoSwin/index.js';
import { beitBlockMask, BevtBatch, BevtPretraining, bevtTubeMask } from '../../src/pretrain/bevt.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { step, stepAndCheckGradients } from '../helpers/training.js';

/** Backbone + head as one module (the recognizer's `backbone.*` / `cls_head.*`). */
class Recognizer extends Module {
  readonly backbone: SwinTransformer3D;
  readonly head: VideoClsHead;
  constructor(numClasses: number) {
    super();
    this.backbone = this.addModule(
      'backbone',
      videoSwin({ embedDim: 8, depths: [2, 2], numHeads: [1, 2], windowSize: [2, 4, 4], patchNorm: true, dropPathRate: 0 }),
    );
    this.head = this.addModule('cls_head', videoClsHead({ inChans: this.backbone.numFeatures, numClasses, dropRate: 0 }));
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => this.head.forward(this.backbone.forward(x, opts) as tf.Tensor5D, opts));
  }
}

function bevtBatch(target: 'tokens' | 'hog' | 'pixel', vocab: number): BevtBatch {
  const data = syntheticVideo({ frameSize: 64, numFrames: 4, seed: 3 });
  const { clips } = data.batch([0, 1]);
  const image = clips.slice([0, 0, 0, 0, 0], [2, 1, -1, -1, -1]).reshape([2, 64, 64, 3]);
  const tubes = [0, 1].map((s) =>
    bevtTubeMask({ inputSize: 4, numMaskingPatches: 8, minNumPatches: 2, clipLen: 4, temporalScale: 2, seed: 10 + s }),
  );
  const imageMask = tf.stack([0, 1].map((s) => beitBlockMask({ inputSize: 4, numMaskingPatches: 8, minNumPatches: 2, seed: 20 + s })));
  const batch: BevtBatch = {
    video: clips,
    videoMask: tf.stack(tubes.map((t) => t.input)),
    videoLossMask: tf.stack(tubes.map((t) => t.output)),
    image,
    imageMask,
  };
  if (target === 'tokens') {
    batch.videoTargets = tf.randomUniform([2, 4, 4, 4], 0, vocab, 'int32', 1);
    batch.imageTargets = tf.randomUniform([2, 4, 4], 0, vocab, 'int32', 2);
  }
  tubes.forEach((t) => tf.dispose([t.input, t.output]));
  return batch;
}

for (const backend of BACKENDS) {
  describe(`video training on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('Video Swin + head: gradients everywhere, the loss falls on moving-shapes clips, no leak', () => {
      manualSeed(1);
      const data = syntheticVideo({ frameSize: 32, numFrames: 4, seed: 1 });
      const { clips, labels } = data.batch([0, 1, 2, 3]);
      const y = tf.oneHot(labels, data.numClasses);
      const m = new Recognizer(data.numClasses);
      const opt = tf.train.adam(3e-3);
      const loss = () => tf.losses.softmaxCrossEntropy(y, m.forward(clips, { training: true })) as tf.Scalar;
      const losses = [stepAndCheckGradients(m, loss, opt, { label: backend, expectUpdate: true })];
      losses.push(step(m, loss, opt));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 4; i++) losses.push(step(m, loss, opt));
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      tf.dispose([clips, labels, y]);
      opt.dispose();
      m.dispose();
    });

    for (const target of ['hog', 'pixel', 'tokens'] as const) {
      it(`BEVT pretraining (${target} targets, mixed streams): gradients everywhere, the loss falls, no leak`, () => {
        manualSeed(2);
        const vocab = 16;
        const model = new BevtPretraining({
          backbone: { embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: [2, 2, 2], patchNorm: true, dropPathRate: 0 },
          target,
          vocabSize: vocab,
        });
        const batch = bevtBatch(target, vocab);
        const opt = tf.train.adam(3e-3);
        const loss = () => model.forward(batch, { training: true });
        const losses = [stepAndCheckGradients(model, loss, opt, { label: `${backend} ${target}`, expectUpdate: true })];
        losses.push(step(model, loss, opt));
        const before = tf.memory().numTensors;
        for (let i = 0; i < 3; i++) losses.push(step(model, loss, opt));
        expect(tf.memory().numTensors).toBe(before);
        expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
        // a video-only and an image-only batch (alternating schedule) train too
        const l = model.forwardLoss({
          video: batch.video,
          videoMask: batch.videoMask,
          videoLossMask: batch.videoLossMask,
          videoTargets: batch.videoTargets,
        });
        expect(l.lossCls2d.dataSync()[0]).toBe(0);
        expect(l.lossCls3d.dataSync()[0]).toBeGreaterThan(0);
        tf.dispose([...Object.values(l), ...Object.values(batch)]);
        opt.dispose();
        model.dispose();
      });
    }
  });
}
