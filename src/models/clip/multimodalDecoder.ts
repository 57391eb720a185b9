import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { normal } from '../../layers/init.js';
import { IDENTITY, Module, ModuleList, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { ClipActivation, ResidualAttentionBlock } from '../../layers/residualAttentionBlock.js';
import { causalMask } from './transformer.js';

/** Options of {@link MultimodalDecoder} (open_clip's `MultimodalTransformer` arguments). */
export interface MultimodalDecoderOptions {
  width: number;
  layers: number;
  heads: number;
  /** Longest text the causal mask covers. */
  contextLength: number;
  /** Output width of `text_projection` (the vocabulary size in CoCa). */
  outputDim: number;
  lsInitValue?: number | null;
  actLayer?: ClipActivation;
}

/**
 * CoCa's multimodal text decoder (Yu et al. 2022, sec. 3.2; open_clip's `MultimodalTransformer`): per layer a
 * causal self-attention block `resblocks.<i>` then a cross-attention block `cross_attn.<i>` over
 * `ln_1_kv(imageEmbs)`; `logits = ln_final(x) @ text_projection`.
 */
export class MultimodalDecoder extends Module {
  readonly resblocks: ResidualAttentionBlock[] = [];
  readonly crossAttn: ResidualAttentionBlock[] = [];
  readonly lnFinal: LayerNorm;
  readonly textProjection: Parameter;
  private readonly mask: tf.Tensor2D;
  constructor(readonly opts: MultimodalDecoderOptions) {
    super();
    this.config = { ...opts };
    const { width, heads } = opts;
    check(Number.isInteger(opts.layers) && opts.layers > 0, () => `multimodal layers must be a positive integer, got ${opts.layers}`);
    const self = this.addModule('resblocks', new ModuleList<ResidualAttentionBlock>());
    const cross = this.addModule('cross_attn', new ModuleList<ResidualAttentionBlock>());
    const blk = (isCrossAttention: boolean) =>
      new ResidualAttentionBlock({ dim: width, heads, lsInitValue: opts.lsInitValue, actLayer: opts.actLayer, isCrossAttention });
    for (let i = 0; i < opts.layers; i++) {
      this.resblocks.push(self.push(blk(false)));
      this.crossAttn.push(cross.push(blk(true)));
    }
    this.lnFinal = this.addModule('ln_final', new LayerNorm(width, 1e-5));
    this.textProjection = this.addParameter('text_projection', normal([width, opts.outputDim], width ** -0.5), IDENTITY);
    this.mask = this.addBuffer('attn_mask', causalMask(opts.contextLength));
  }

  /** `imageEmbs` `[B, M, width]`, `textEmbs` `[B, L, width]` -> logits `[B, L, outputDim]`. */
  forward(imageEmbs: tf.Tensor, opts: { textEmbs: tf.Tensor; training?: boolean }): tf.Tensor3D {
    const t = opts.textEmbs;
    const w = this.opts.width;
    check(t.rank === 3 && t.shape[2] === w, () => `decoder text embeddings must be [B, L, ${w}], got [${t.shape.join(', ')}]`);
    check(
      imageEmbs.rank === 3 && imageEmbs.shape[2] === w && imageEmbs.shape[0] === t.shape[0],
      () => `decoder image embeddings must be [${t.shape[0]}, M, ${w}], got [${imageEmbs.shape.join(', ')}]`,
    );
    const l = t.shape[1] as number;
    check(l <= this.opts.contextLength, () => `text length ${l} exceeds the decoder's contextLength ${this.opts.contextLength}`);
    return tf.tidy(() => {
      const attnMask = tf.slice(this.mask, [0, 0], [l, l]);
      let x = t as tf.Tensor3D;
      for (let i = 0; i < this.resblocks.length; i++) {
        x = this.resblocks[i].forward(x, { attnMask, training: opts.training });
        x = this.crossAttn[i].forward(x, { kv: imageEmbs, training: opts.training });
      }
      const y = this.lnFinal.forward(x);
      const [b] = y.shape;
      return tf.matMul(y.reshape([b * l, w]), this.textProjection.value).reshape([b, l, this.opts.outputDim]) as tf.Tensor3D;
    });
  }
}
