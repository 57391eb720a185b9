import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { normal } from '../../layers/init.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { MultiheadAttention } from '../../layers/multiheadAttention.js';
import { LayerNorm } from '../../layers/norm.js';

/**
 * Attentional pooling (CoCa, Yu et al. 2022, sec. 3.2; open_clip's `AttentionalPooler`): `n` learned queries
 * `ln_q(query)` attend over `ln_k(x)`, giving `[B, n, dModel]`. Keys `query`, `attn.*` (an
 * `nn.MultiheadAttention` with `kdim = vdim = contextDim`), `ln_q`, `ln_k`.
 */
export class AttentionalPooler extends Module {
  readonly query: Parameter;
  readonly attn: MultiheadAttention;
  readonly lnQ: LayerNorm;
  readonly lnK: LayerNorm;
  constructor(
    readonly dModel: number,
    readonly contextDim: number,
    readonly nHead = 8,
    readonly nQueries = 256,
  ) {
    super();
    this.config = { dModel, contextDim, nHead, nQueries };
    check(Number.isInteger(nQueries) && nQueries > 0, () => `attnPoolerQueries must be a positive integer, got ${nQueries}`);
    this.query = this.addParameter('query', normal([nQueries, dModel], 1));
    this.attn = this.addModule('attn', new MultiheadAttention(dModel, nHead, { kdim: contextDim, vdim: contextDim }));
    this.lnQ = this.addModule('ln_q', new LayerNorm(dModel, 1e-5));
    this.lnK = this.addModule('ln_k', new LayerNorm(contextDim, 1e-5));
  }

  /** Tokens `[B, N, contextDim]` -> pooled queries `[B, nQueries, dModel]`. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
    check(
      x.rank === 3 && x.shape[2] === this.contextDim,
      () => `AttentionalPooler expects tokens [B, N, ${this.contextDim}], got [${x.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      const k = this.lnK.forward(x);
      const q = this.lnQ.forward(this.query.value);
      const qb = tf.broadcastTo(q.expandDims(0), [x.shape[0], this.nQueries, this.dModel]);
      return this.attn.forward(qb, { key: k, value: k, training: opts.training });
    });
  }
}
