import * as tf from '@tensorflow/tfjs';
import { DecodePool } from '../data/decodePool.js';
import { ImageFolder, imageLoader } from '../data/imageFolder.js';
import type { ImageTransform } from '../data/tensorImage.js';

/** What the training commands share about one epoch over a folder dataset. */
export interface EpochBatchOptions {
  transform: ImageTransform;
  batchSize: number;
  /** The run's seed: the epoch's order depends on (seed, epoch) only, so a resumed run repeats it. */
  seed: number;
  epoch: number;
  pool?: DecodePool;
  strict: boolean;
  onError: (path: string, error: Error) => void;
}

/**
 * One shuffled epoch of full batches (the last, smaller one is dropped), each handed to `step` and
 * disposed after it, whatever `step` does. Yields the value `step` returned, batch by batch.
 */
export async function* epochBatches<R>(
  trainSet: ImageFolder,
  opts: EpochBatchOptions,
  step: (b: { x: tf.Tensor4D; y: tf.Tensor1D }) => R,
): AsyncGenerator<R> {
  const { transform, batchSize, pool, strict, onError } = opts;
  const seed = opts.seed * 7919 + opts.epoch;
  for await (const b of imageLoader(trainSet, { transform, batchSize, shuffle: true, seed, keepLast: false, pool, strict, onError })) {
    let r: R;
    try {
      r = step(b);
    } finally {
      tf.dispose([b.x, b.y]);
    }
    yield r;
  }
}
