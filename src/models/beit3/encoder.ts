import * as tf from '@tensorflow/tfjs';
import { dropPathRates, dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { ResolvedBEiT3Config } from './config.js';
import { Embedding } from '../../layers/embedding.js';
import { EncoderLayer } from './encoderLayer.js';
import { Experts, MultiwayNetwork, multiwayWrapper, runExperts } from './multiway.js';

/** Inputs of {@link Encoder.forward}. */
export interface EncoderInputs {
  /** Embedded tokens `[B, T, D]` (vision then text). */
  tokens: tf.Tensor;
  /** `[B, T]` float 0/1, 1 = padding. */
  paddingMask: tf.Tensor;
  split: number;
  attnMask: tf.Tensor | null;
  training: boolean;
}

/**
 * torchscale's `Encoder` as BEiT-3 builds it: multiway position tables (`embed_positions.A` for the vision
 * tokens, `.B` for the text tokens, both read from row 2 on, the fairseq offset), optional
 * `layernorm_embedding`, padded tokens zeroed, the layers, the final multiway `layer_norm` (pre-LN with
 * `normalizeOutput`) and the optional vocabulary `output_projection` (no bias).
 */
export class Encoder extends Module {
  readonly embedPositions: MultiwayNetwork<Embedding> | null;
  readonly layernormEmbedding: Experts<LayerNorm> | null;
  readonly layers: ModuleList<EncoderLayer>;
  readonly layerNorm: Experts<LayerNorm> | null;
  readonly outputProjection: Linear | null;
  constructor(
    readonly c: ResolvedBEiT3Config,
    numVisionPositions: number,
  ) {
    super();
    const d = c.encoderEmbedDim;
    this.embedPositions = c.multiway
      ? this.addModule('embed_positions', new PositionTables(numVisionPositions + 2, c.maxSourcePositions, d))
      : null;
    this.layernormEmbedding = c.layernormEmbedding
      ? this.addModule(
          'layernorm_embedding',
          multiwayWrapper(c.multiway, () => new LayerNorm(d, c.layernormEps)),
        )
      : null;
    this.layers = this.addModule('layers', new ModuleList<EncoderLayer>());
    const dpr = dropPathRates(c.dropPathRate, [c.encoderLayers])[0];
    for (let i = 0; i < c.encoderLayers; i++) this.layers.push(new EncoderLayer(c, dpr[i]));
    this.layerNorm =
      c.encoderNormalizeBefore && c.normalizeOutput
        ? this.addModule(
            'layer_norm',
            multiwayWrapper(c.multiway, () => new LayerNorm(d, c.layernormEps)),
          )
        : null;
    this.outputProjection = c.noOutputLayer ? null : this.addModule('output_projection', new Linear(d, c.vocabSize, { bias: false }));
  }

  forward(inputs: EncoderInputs): tf.Tensor3D {
    const { split, training } = inputs;
    return tf.tidy(() => {
      let x = inputs.tokens;
      if (this.embedPositions)
        x = tf.add(
          x,
          runExperts(this.embedPositions, x, split, (m, u) => positionRows(m, u.shape[1] as number)),
        );
      if (this.layernormEmbedding) x = runExperts(this.layernormEmbedding, x, split, (m, u) => m.forward(u));
      x = dropout(x, this.c.dropout, training);
      x = tf.mul(x, tf.sub(1, inputs.paddingMask).expandDims(2));
      const [b, t] = x.shape;
      const pad = inputs.paddingMask.toBool();
      const keyBias = tf.any(pad).dataSync()[0] ? tf.where(pad, tf.fill([b, t], -Infinity), tf.zeros([b, t])).reshape([b, 1, 1, t]) : null;
      for (const layer of this.layers.items) x = layer.forward(x, { split, keyBias, attnMask: inputs.attnMask, training });
      if (this.layerNorm) x = runExperts(this.layerNorm, x, split, (m, u) => m.forward(u));
      if (this.outputProjection) x = this.outputProjection.forward(x);
      return x as tf.Tensor3D;
    });
  }
}

/** torchscale's `PositionalEmbedding` lookup with default positions: rows `2 .. 2 + L - 1` as `[1, L, D]`. */
function positionRows(table: Embedding, len: number): tf.Tensor {
  return tf.tidy(() => tf.slice(table.weight.value, [2, 0], [len, -1]).expandDims(0));
}

/** `MutliwayEmbedding`: `A` = vision positions `(numPatches + 3, D)`, `B` = text positions `(maxSourcePositions, D)`. */
class PositionTables extends MultiwayNetwork<Embedding> {
  constructor(visionRows: number, textRows: number, dim: number) {
    let i = 0;
    super(() => new Embedding(i++ === 0 ? visionRows : textRows, dim, 0.02));
  }
}
