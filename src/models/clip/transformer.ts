import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ModuleList, Module } from '../../layers/module.js';
import { ClipActivation, ResidualAttentionBlock } from '../../layers/residualAttentionBlock.js';
import { featureTakeIndices } from '../backbone.js';

/** Options of {@link ClipTransformer} (open_clip's `Transformer` arguments). */
export interface ClipTransformerOptions {
  width: number;
  layers: number;
  heads: number;
  mlpRatio?: number;
  lsInitValue?: number | null;
  actLayer?: ClipActivation;
}

/**
 * open_clip's `Transformer`: a stack of {@link ResidualAttentionBlock}s under `resblocks.<i>` that all see
 * the same additive attention mask.
 */
export class ClipTransformer extends Module {
  readonly resblocks: ResidualAttentionBlock[] = [];
  constructor(readonly opts: ClipTransformerOptions) {
    super();
    this.config = { ...opts };
    check(Number.isInteger(opts.layers) && opts.layers > 0, () => `layers must be a positive integer, got ${opts.layers}`);
    const list = this.addModule('resblocks', new ModuleList<ResidualAttentionBlock>());
    for (let i = 0; i < opts.layers; i++) {
      const blk = new ResidualAttentionBlock({
        dim: opts.width,
        heads: opts.heads,
        mlpRatio: opts.mlpRatio,
        lsInitValue: opts.lsInitValue,
        actLayer: opts.actLayer,
      });
      this.resblocks.push(list.push(blk));
    }
  }

  forward(x: tf.Tensor, opts: { attnMask?: tf.Tensor; training?: boolean } = {}): tf.Tensor3D {
    return tf.tidy(() => {
      let y = x as tf.Tensor3D;
      for (const blk of this.resblocks) y = blk.forward(y, opts);
      return y;
    });
  }

  /**
   * The blocks' outputs at `indices` (timm's convention: a number = the last n blocks, a list = those blocks,
   * default all) and the final output (null when `stopEarly` ends at the last wanted block).
   */
  forwardIntermediates(
    x: tf.Tensor,
    opts: { attnMask?: tf.Tensor; indices?: number | number[]; stopEarly?: boolean; training?: boolean } = {},
  ): { last: tf.Tensor3D | null; intermediates: tf.Tensor3D[] } {
    const { take, maxIndex } = featureTakeIndices(this.resblocks.length, opts.indices);
    const stop = opts.stopEarly ? maxIndex : this.resblocks.length - 1;
    const full = stop === this.resblocks.length - 1;
    const out = tf.tidy(() => {
      const inter: tf.Tensor3D[] = [];
      let y = x as tf.Tensor3D;
      for (let i = 0; i <= stop; i++) {
        y = this.resblocks[i].forward(y, opts);
        if (take.includes(i)) inter.push(y.clone());
      }
      return full ? [y, ...inter] : inter;
    });
    return full ? { last: out[0], intermediates: out.slice(1) } : { last: null, intermediates: out };
  }
}

/** The additive causal mask `[n, n]`: `-inf` strictly above the diagonal, 0 elsewhere. */
export function causalMask(n: number): tf.Tensor2D {
  const m = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -Infinity;
  return tf.tensor2d(m, [n, n]);
}
