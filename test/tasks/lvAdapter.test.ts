/**
 * LV-Adapter (language-guided multi-task adapters): on a frozen Swin and a frozen CLIP text tower, a
 * segmentation and a classification task trained together move only the adapter, prompt, cross-attention,
 * alignment and head variables; the backbone and the text tower stay bit-identical; every trainable variable
 * gets a gradient; the alignment loss falls; no step leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualSeed } from '../../src/layers/init.js';
import type { Module } from '../../src/layers/module.js';
import { ClipTextTransformer, clipTextTransformer } from '../../src/models/clip/index.js';
import { swin } from '../../src/models/swin/index.js';
import { lvAdapter, LvAdapter } from '../../src/tasks/lvAdapter.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';
import { stepAndCheckGradients } from '../helpers/training.js';

/** A four-stage Swin of 8 channels at 32 px, headless. */
function tinySwin() {
  return swin({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 });
}

const bytes = (t: tf.Tensor) => Buffer.from((t.dataSync() as Float32Array).slice().buffer);
const snapshot = (m: Module) => new Map(m.namedParameters().map(([n, p]) => [n, bytes(p.variable)]));
const changed = (before: Map<string, Buffer>, m: Module) =>
  m
    .namedParameters()
    .filter(([n, p]) => Buffer.compare(before.get(n)!, bytes(p.variable)) !== 0)
    .map(([n]) => n);

const SOT = 62;
const EOT = 63;
/** Tokenized class-name prompts `[K, 6]`: SOT, one or two name ids, EOT, padding (EOT is the largest id: argmax pools it). */
function classTokens(names: number[][]): tf.Tensor2D {
  const rows = names.map((ids) => {
    const r = [SOT, ...ids, EOT];
    while (r.length < 6) r.push(0);
    return r;
  });
  return tf.tensor2d(rows, [names.length, 6], 'int32');
}

/** Segmentation labels for a [2, s, s] batch (3 classes, 1 pixel in 8 ignored) and two image classes. */
function targets(s: number): { seg: tf.Tensor3D; cls: tf.Tensor1D } {
  const v = new Int32Array(2 * s * s);
  for (let i = 0; i < v.length; i++) {
    const y = Math.floor(i / s) % s;
    const x = i % s;
    v[i] = (x * 7 + y * 3) % 8 === 1 ? 255 : x < s / 2 ? 0 : y < s / 2 ? 1 : 2;
  }
  return { seg: tf.tensor3d(v, [2, s, s], 'int32'), cls: tf.tensor1d([0, 1], 'int32') };
}

function build(): LvAdapter<ClipTextTransformer> {
  const backbone = tinySwin();
  const textEncoder = clipTextTransformer({ contextLength: 12, vocabSize: 64, width: 16, heads: 2, layers: 1, outputDim: 16 });
  const seg = classTokens([[5], [9, 11], [17]]);
  const cls = classTokens([[23], [29, 31]]);
  const m = lvAdapter({
    backbone,
    textEncoder,
    tasks: [
      { name: 'seg', type: 'segmentation', classTokens: seg },
      { name: 'cls', type: 'classification', classTokens: cls },
    ],
    nCtx: 4,
    attnDim: 16,
    attnHeads: 2,
    alignLevel: 2,
  });
  tf.dispose([seg, cls]);
  return m;
}

const TRAINABLE = /^(adapters\.\d+\.|prompts\.(seg|cls)$|l2v\.\d+\.|align_proj\.(seg|cls)\.|heads\.(seg|cls)\.)/;

for (const backend of BACKENDS) {
  describe(`LV-Adapter on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });

    it('outputs: per-task logits, alignment scores, prompt features; only adapter / prompt / head variables are trainable', () => {
      manualSeed(3);
      const before = tf.memory().numTensors;
      const m = build();
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
      const out = m.forward(x);
      expect(out.logits.seg.shape).toEqual([2, 32, 32, 3]);
      expect(out.logits.cls.shape).toEqual([2, 2]);
      expect(out.alignment.seg.shape).toEqual([2, 2, 2, 3]); // level 2 of the Swin: stride 16
      expect(out.alignment.cls.shape).toEqual([2, 2]);
      expect(out.textEmbeddings.seg.shape).toEqual([3, 16]);
      expect(out.features.map((f) => f.shape)).toEqual([
        [2, 8, 8, 8],
        [2, 4, 4, 16],
        [2, 2, 2, 32],
        [2, 1, 1, 64],
      ]);
      // text features are unit vectors; the alignment logits are their cosine with the pixels over tau (|s| <= 1/tau)
      const norms = tf.tidy(() => tf.norm(out.textEmbeddings.cls, 2, 1).dataSync());
      for (const n of norms) expect(n).toBeCloseTo(1, 5);
      expect(tf.tidy(() => tf.max(tf.abs(out.alignment.seg)).dataSync()[0])).toBeLessThanOrEqual(1 / 0.07 + 1e-4);
      // the prompt contexts change the text features (they are inserted after SOT)
      const ids = classTokens([[23], [29, 31]]);
      const plain = m.textEncoder.forward(ids);
      const withCtx = m.textEncoder.forwardWithContext(ids, m.prompts.items.get('cls')!.value);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(plain, withCtx))).dataSync()[0])).toBeGreaterThan(1e-3);
      // with zero context tokens forwardWithContext is the plain forward
      const empty = tf.zeros([0, 16]);
      const none = m.textEncoder.forwardWithContext(ids, empty);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(plain, none))).dataSync()[0])).toBeLessThan(1e-5);
      // contexts equal to the embeddings of ids 7, 8 give the features of [SOT, 7, 8, name..., EOT]
      const ctxIds = tf.tensor2d([[7, 8]], [1, 2], 'int32');
      const ctx = tf.tidy(() => m.textEncoder.tokenEmbedding.forward(ctxIds).reshape([2, 16]));
      const full = tf.tensor2d(
        [
          [SOT, 7, 8, 23, EOT, 0, 0, 0],
          [SOT, 7, 8, 29, 31, EOT, 0, 0],
        ],
        [2, 8],
        'int32',
      );
      const viaCtx = m.textEncoder.forwardWithContext(ids, ctx);
      const direct = m.textEncoder.forward(full);
      expect(tf.tidy(() => tf.max(tf.abs(tf.sub(viaCtx, direct))).dataSync()[0])).toBeLessThan(1e-5);
      tf.dispose([ids, plain, withCtx, none, empty, ctxIds, ctx, full, viaCtx, direct]);
      const trainable = m
        .namedParameters()
        .filter(([, p]) => p.trainable)
        .map(([n]) => n);
      expect(trainable.length).toBeGreaterThan(0);
      expect(trainable.filter((n) => !TRAINABLE.test(n))).toEqual([]);
      expect(m.backbone.trainableVariables()).toEqual([]);
      expect(m.textEncoder.trainableVariables()).toEqual([]);
      expect(m.prompts.items.get('seg')!.value.shape).toEqual([4, 16]);
      // state-dict round trip: a differently seeded model loaded with these weights gives the same outputs
      const sd = m.stateDict();
      expect(Object.keys(sd).filter((k) => !/^(backbone|text_encoder|adapters|prompts|l2v|align_proj|heads)\./.test(k))).toEqual([]);
      manualSeed(99);
      const m2 = build();
      m2.loadStateDict(sd);
      const out2 = m2.forward(x);
      for (const k of ['seg', 'cls']) {
        expect(bytes(out2.logits[k]).equals(bytes(out.logits[k]))).toBe(true);
        expect(bytes(out2.alignment[k]).equals(bytes(out.alignment[k]))).toBe(true);
      }
      tf.dispose([x, out as unknown as tf.TensorContainer, out2 as unknown as tf.TensorContainer, ...Object.values(sd)]);
      m.dispose();
      m2.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('joint training: gradients everywhere, backbone and text tower bit-identical, every trainable variable moves, the alignment loss falls, no leak', () => {
      manualSeed(4);
      const startTensors = tf.memory().numTensors;
      const m = build();
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 6);
      const y = targets(32);
      const frozenBackbone = snapshot(m.backbone);
      const frozenText = snapshot(m.textEncoder);
      const all = snapshot(m);
      const lossFn = () => m.loss(x, y, { training: true }).loss;
      const evalAlign = () =>
        tf.tidy(() => {
          const l = m.loss(x, y);
          return [l.alignmentLoss.dataSync()[0], l.loss.dataSync()[0]];
        });
      const [align0, total0] = evalAlign();
      const opt = tf.train.adam(0.01);
      stepAndCheckGradients(m, lossFn, opt, { label: `lvAdapter [${backend}]` });
      let count = -1;
      for (let i = 1; i < 15; i++) {
        const loss = opt.minimize(lossFn, true, m.trainableVariables())!;
        loss.dispose();
        if (i === 1)
          count = tf.memory().numTensors; // Adam's slots exist after the first minimize
        else expect(tf.memory().numTensors, `step ${i} leaked`).toBe(count);
      }
      const [align1, total1] = evalAlign();
      console.log(
        `[${backend}] lvAdapter alignment loss ${align0.toFixed(4)} -> ${align1.toFixed(4)}; total ${total0.toFixed(4)} -> ${total1.toFixed(4)}`,
      );
      expect(align1).toBeLessThan(align0 * 0.9);
      expect(total1).toBeLessThan(total0);
      expect(changed(frozenBackbone, m.backbone)).toEqual([]);
      expect(changed(frozenText, m.textEncoder)).toEqual([]);
      const moved = changed(all, m).sort();
      const trainable = m
        .namedParameters()
        .filter(([, p]) => p.trainable)
        .map(([n]) => n)
        .sort();
      expect(moved).toEqual(trainable);
      opt.dispose();
      tf.dispose([x, y.seg, y.cls]);
      m.dispose();
      expect(tf.memory().numTensors).toBe(startTensors);
    });
  });
}

describe('LV-Adapter input checks', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('bad tasks, prompts and targets raise clear errors', () => {
    const backbone = tinySwin();
    const textEncoder = clipTextTransformer({ contextLength: 12, vocabSize: 64, width: 16, heads: 2, layers: 1, outputDim: 16 });
    const ids = classTokens([[5], [9]]);
    expectError(() => lvAdapter({ backbone, textEncoder, tasks: [] }), /tasks must be a non-empty list/);
    expectError(
      () => lvAdapter({ backbone, textEncoder, tasks: [{ name: 'a', type: 'detection' as never, classTokens: ids }] }),
      /task 'a' type must be 'segmentation' or 'classification', got "detection"/,
    );
    expectError(
      () => lvAdapter({ backbone, textEncoder, tasks: [{ name: 'a', type: 'classification', classTokens: tf.zeros([2, 6]) }] }),
      /task 'a' classTokens must be int32 token ids \[K, L\], got float32 \[2, 6\]/,
    );
    expectError(
      () => lvAdapter({ backbone, textEncoder, nCtx: 8, tasks: [{ name: 'a', type: 'classification', classTokens: ids }] }),
      /prompts of 6 tokens plus 8 context tokens exceed the text tower's contextLength 12/,
    );
    expectError(
      () =>
        lvAdapter({
          backbone,
          textEncoder,
          nCtx: 2,
          tasks: [
            { name: 'a', type: 'classification', classTokens: ids },
            { name: 'a', type: 'classification', classTokens: ids },
          ],
        }),
      /task names must be unique identifiers/,
    );
    expectError(
      () => lvAdapter({ backbone, textEncoder, nCtx: 2, alignLevel: 7, tasks: [{ name: 'a', type: 'classification', classTokens: ids }] }),
      /alignLevel 7 is out of range for the backbone's 4 levels/,
    );
    const m = lvAdapter({
      backbone,
      textEncoder,
      nCtx: 2,
      attnDim: 8,
      attnHeads: 2,
      tasks: [{ name: 'a', type: 'segmentation', classTokens: ids }],
    });
    const x = tf.zeros([2, 32, 32, 3]);
    expectError(() => m.loss(x, { a: tf.zeros([2, 16, 16], 'int32') }), /targets\.a must be int32 labels \[2, 32, 32\], got \[2, 16, 16\]/);
    expectError(() => m.loss(x, {}), /targets\.a must be int32 labels \[2, 32, 32\], got undefined/);
    expectError(() => textEncoder.forwardWithContext(ids, tf.zeros([2, 8])), /context must be \[N, 16\]/);
    tf.dispose([ids, x]);
    m.dispose();
  });
});
