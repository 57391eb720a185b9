import * as tf from '@tensorflow/tfjs';
import { DropPath, dropout } from '../../layers/dropPath.js';
import { Module } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { ResolvedBEiT3Config, residualAlpha } from './config.js';
import { FeedForwardNetwork } from './feedForward.js';
import { AttentionInputs, MultiwayAttention } from './multiheadAttention.js';
import { Experts, multiwayWrapper, runExperts } from './multiway.js';

/**
 * torchscale's `EncoderLayer` with multiway experts. Pre-LN (`encoderNormalizeBefore`, also forced by
 * sub-LN): `x + attn(ln(x))`, `x + ffn(ln(x))`. Post-LN: `ln(alpha x + attn(x))`, `ln(alpha x + ffn(x))`
 * with DeepNet's `alpha = (2 N)^(1/4)` under `deepnorm`, else 1. State-dict keys `self_attn.*`,
 * `self_attn_layer_norm.{A,B}`, `ffn.{A,B}.*`, `final_layer_norm.{A,B}`.
 */
export class EncoderLayer extends Module {
  readonly selfAttn: MultiwayAttention;
  readonly selfAttnLayerNorm: Experts<LayerNorm>;
  readonly ffn: Experts<FeedForwardNetwork>;
  readonly finalLayerNorm: Experts<LayerNorm>;
  readonly dropPath: DropPath;
  readonly alpha: number;
  private readonly normalizeBefore: boolean;
  private readonly drop: number;
  constructor(c: ResolvedBEiT3Config, dropPathRate: number) {
    super();
    const d = c.encoderEmbedDim;
    const eps = c.layernormEps;
    this.selfAttn = this.addModule(
      'self_attn',
      new MultiwayAttention({
        dim: d,
        numHeads: c.encoderAttentionHeads,
        multiway: c.multiway,
        subln: c.subln,
        eps,
        attnDrop: c.attentionDropout,
      }),
    );
    this.selfAttnLayerNorm = this.addModule(
      'self_attn_layer_norm',
      multiwayWrapper(c.multiway, () => new LayerNorm(d, eps)),
    );
    this.ffn = this.addModule(
      'ffn',
      multiwayWrapper(
        c.multiway,
        () =>
          new FeedForwardNetwork({
            dim: d,
            ffnDim: c.encoderFfnEmbedDim,
            activation: c.activationFn,
            subln: c.subln,
            eps,
            dropout: c.dropout,
            activationDropout: c.activationDropout,
          }),
      ),
    );
    this.finalLayerNorm = this.addModule(
      'final_layer_norm',
      multiwayWrapper(c.multiway, () => new LayerNorm(d, eps)),
    );
    this.dropPath = new DropPath(dropPathRate);
    this.alpha = residualAlpha(c);
    this.normalizeBefore = c.encoderNormalizeBefore;
    this.drop = c.dropout;
  }

  forward(x: tf.Tensor, inputs: AttentionInputs): tf.Tensor3D {
    const { split, training } = inputs;
    const ln = (e: Experts<LayerNorm>, u: tf.Tensor) => runExperts(e, u, split, (m, v) => m.forward(v));
    const residual = (branch: tf.Tensor, res: tf.Tensor) =>
      this.alpha === 1 ? tf.add(res, branch) : tf.add(tf.mul(res, this.alpha), branch);
    return tf.tidy(() => {
      let h = this.normalizeBefore ? ln(this.selfAttnLayerNorm, x) : x;
      h = this.selfAttn.forward(h, inputs);
      h = this.dropPath.forward(dropout(h, this.drop, training), { training });
      let y = residual(h, x);
      if (!this.normalizeBefore) y = ln(this.selfAttnLayerNorm, y);
      h = this.normalizeBefore ? ln(this.finalLayerNorm, y) : y;
      h = runExperts(this.ffn, h, split, (m, v) => m.forward(v, { training }));
      h = this.dropPath.forward(h, { training });
      let z = residual(h, y);
      if (!this.normalizeBefore) z = ln(this.finalLayerNorm, z);
      return z as tf.Tensor3D;
    });
  }
}
