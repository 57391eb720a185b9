import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { normal } from '../../layers/init.js';
import { Module, Parameter } from '../../layers/module.js';

/** A lookup table of token embeddings (PyTorch's `nn.Embedding`, key `weight` `[num, dim]`). */
export class TokenEmbedding extends Module {
  readonly weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    std = 0.02,
  ) {
    super();
    this.config = { numEmbeddings, dim };
    this.weight = this.addParameter('weight', normal([numEmbeddings, dim], std));
  }
  /** int32 ids `[B, L]` -> `[B, L, dim]`. */
  forward(ids: tf.Tensor): tf.Tensor3D {
    check(
      ids.rank === 2 && ids.dtype === 'int32',
      () => `token ids must be an int32 tensor [B, L], got ${ids.dtype} [${ids.shape.join(', ')}]`,
    );
    const v = ids.dataSync();
    for (let i = 0; i < v.length; i++) {
      const id = v[i];
      check(id >= 0 && id < this.numEmbeddings, () => `token id ${id} is outside the vocabulary [0, ${this.numEmbeddings - 1}]`);
    }
    const [b, l] = ids.shape;
    return tf.tidy(() => tf.gather(this.weight.value, ids.reshape([b * l])).reshape([b, l, this.dim]) as tf.Tensor3D);
  }
}
