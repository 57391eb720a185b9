import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { fcmaeLoss } from '../../src/pretrain/fcmaeLoss.js';
import { evaLoss, milanLoss } from '../../src/pretrain/featureLosses.js';
import { mixmimLoss } from '../../src/pretrain/mixmimLoss.js';
import { simmimLoss } from '../../src/pretrain/simmimLoss.js';

describe('pretraining losses reject wrong shapes with clear errors', () => {
  const x = tf.zeros([2, 64, 64, 3]);
  it('simmimLoss', () => {
    expect(() => simmimLoss(x, tf.zeros([2, 64, 64, 1]), tf.zeros([2, 16, 16]), { patchSize: 4 })).toThrow(
      /reconstruction shape \[2, 64, 64, 1\] differs/,
    );
    expect(() => simmimLoss(x, x, tf.zeros([2, 8, 8]), { patchSize: 4 })).toThrow(/expected a mask \[2, 16, 16\]/);
    expect(() => simmimLoss(x, x, tf.zeros([2, 16, 16]), { patchSize: 5 })).toThrow(/64x64 is not divisible by patchSize 5/);
  });
  it('mixmimLoss', () => {
    const odd = tf.zeros([3, 64, 64, 3]);
    expect(() => mixmimLoss(odd, tf.zeros([6, 4, 3072]), tf.zeros([2, 2]), { patchSize: 32 })).toThrow(/batch must be even .* B = 3/);
    expect(() => mixmimLoss(x, tf.zeros([2, 4, 3072]), tf.zeros([2, 2]), { patchSize: 32 })).toThrow(
      /expected a reconstruction \[4, 4, 3072\]/,
    );
    expect(() => mixmimLoss(x, tf.zeros([4, 4, 3072]), tf.zeros([4, 4]), { patchSize: 32 })).toThrow(/batch-shared mask \[2, 2\]/);
    odd.dispose();
  });
  it('fcmaeLoss', () => {
    expect(() => fcmaeLoss(x, tf.zeros([2, 4, 100]), tf.zeros([2, 2, 2]), { patchSize: 32 })).toThrow(
      /expected a prediction \[2, 4, 3072\]/,
    );
    expect(() => fcmaeLoss(x, tf.zeros([2, 4, 3072]), tf.zeros([2, 4]), { patchSize: 32 })).toThrow(/expected a mask \[2, 2, 2\]/);
    expect(() => fcmaeLoss(x, tf.zeros([2, 4, 3072]), tf.zeros([2, 2, 2]), { patchSize: 0 })).toThrow(VisBackbonesError);
  });
  it('evaLoss and milanLoss', () => {
    const a = tf.zeros([2, 16, 8]);
    expect(() => evaLoss(a, tf.zeros([2, 16, 4]), tf.ones([2, 16]))).toThrow(/differ in shape/);
    expect(() => evaLoss(a, a, tf.ones([2, 8]))).toThrow(/expected a mask \[2, 16\]/);
    expect(() => milanLoss(a, tf.zeros([2, 17, 8]))).toThrow(/differ in shape/);
    expect(() => milanLoss(tf.zeros([16, 8]), tf.zeros([16, 8]))).toThrow(/\[B, L, D\]/);
    a.dispose();
  });
});
