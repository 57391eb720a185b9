import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { normal } from './init.js';
import { Module, Parameter } from './module.js';

/**
 * Rows of `weight` `[V, D]` for integer ids of any shape -> `[...ids.shape, D]`. The gradient with respect to
 * the table is a scatter-add of the incoming rows (so training runs on backends without `UnsortedSegmentSum`).
 */
export function embeddingLookup(weight: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [v, d] = weight.shape;
  const flat = tf.tidy(() => (ids.dtype === 'int32' ? ids : tf.round(ids).toInt()).reshape([-1]));
  const lookup = tf.customGrad(((w: tf.Tensor, save: tf.GradSaveFunc) => {
    save([flat]);
    return {
      value: tf.gather(w, flat),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0].reshape([-1, 1]), dy.reshape([-1, d]), [v, d]),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (w: tf.Tensor) => tf.Tensor;
  const rows = lookup(weight);
  const out = rows.reshape([...ids.shape, d]);
  rows.dispose();
  flat.dispose();
  return out;
}

/** Check that every id lies in `[0, vocab)` (reads the ids). */
export function checkTokenIds(ids: tf.Tensor, vocab: number, what: string): void {
  const vals = ids.dataSync();
  for (let i = 0; i < vals.length; i++) {
    const t = vals[i];
    check(Number.isInteger(t) && t >= 0 && t < vocab, () => `${what}: token id ${t} at flat index ${i} is outside [0, ${vocab})`);
  }
}

/** PyTorch's `nn.Embedding(num, dim)`: state-dict key `weight` `[num, dim]` (init N(0, 1)). */
export class Embedding extends Module {
  readonly weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    std = 1,
  ) {
    super();
    this.config = { numEmbeddings, embeddingDim };
    this.weight = this.addParameter('weight', normal([numEmbeddings, embeddingDim], std));
  }
  /** ids (int32, or float holding integers) `[...]` -> `[..., dim]`. */
  forward(ids: tf.Tensor): tf.Tensor {
    return embeddingLookup(this.weight.value, ids);
  }
}
