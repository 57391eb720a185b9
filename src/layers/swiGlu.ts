import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { ActivationName, getActivation } from './activations.js';
import { dropout } from './dropPath.js';
import { Linear } from './linear.js';
import { ForwardOptions, Module } from './module.js';
import { LayerNorm } from './norm.js';

/**
 * Gated linear unit MLPs (Dauphin et al. 2017; SwiGLU: Shazeer 2020, "GLU Variants Improve Transformer",
 * eq. 5-6): `fc2(act(gate(x)) * value(x))`, timm's `SwiGLU` (two input projections) and `GluMlp` (one
 * packed projection).
 */

/** Activations a gated MLP accepts: the named ones plus the logistic sigmoid (the original GLU). */
export type GateActivation = ActivationName | 'sigmoid';

function gateActivation(name: GateActivation): (x: tf.Tensor) => tf.Tensor {
  return name === 'sigmoid' ? (x) => tf.sigmoid(x) : getActivation(name);
}

/** Options of {@link SwiGLU} (timm's arguments). */
export interface SwiGLUOptions {
  /** Width of the gated hidden layer. Default: `inFeatures`. */
  hiddenFeatures?: number;
  outFeatures?: number;
  /** Default 'silu'. */
  act?: GateActivation;
  /** Biases of the projections (default true). */
  bias?: boolean;
  drop?: number;
  /** LayerNorm over the hidden layer before `fc2` (NormFormer-style "sub-LN", EVA-02's `scale_mlp`) with this epsilon. */
  normEps?: number | null;
}

/**
 * SwiGLU with separate gate and value projections (timm's `SwiGLU`):
 * `fc2(norm(act(fc1_g(x)) * fc1_x(x)))`. State-dict keys `fc1_g.*`, `fc1_x.*`, `norm.*`, `fc2.*`.
 */
export class SwiGLU extends Module {
  readonly fc1G: Linear;
  readonly fc1X: Linear;
  readonly norm: LayerNorm | null;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly inFeatures: number,
    readonly opts: SwiGLUOptions = {},
  ) {
    super();
    this.config = { inFeatures, ...opts };
    const hidden = opts.hiddenFeatures ?? inFeatures;
    const bias = opts.bias ?? true;
    this.fc1G = this.addModule('fc1_g', new Linear(inFeatures, hidden, { bias }));
    this.fc1X = this.addModule('fc1_x', new Linear(inFeatures, hidden, { bias }));
    this.act = gateActivation(opts.act ?? 'silu');
    this.norm = opts.normEps != null ? this.addModule('norm', new LayerNorm(hidden, opts.normEps)) : null;
    this.fc2 = this.addModule('fc2', new Linear(hidden, opts.outFeatures ?? inFeatures, { bias }));
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const p = this.opts.drop ?? 0;
    const t = opts.training ?? false;
    return tf.tidy(() => {
      let h = dropout(tf.mul(this.act(this.fc1G.forward(x)), this.fc1X.forward(x)), p, t);
      if (this.norm) h = this.norm.forward(h);
      return dropout(this.fc2.forward(h), p, t);
    });
  }
}

/** Options of {@link GluMlp} (timm's arguments). */
export interface GluMlpOptions {
  /** Output width of the packed `fc1` (gate and value together, so twice the gated width); even. Default `4 * inFeatures`. */
  hiddenFeatures?: number;
  outFeatures?: number;
  /** Default 'sigmoid' (the original GLU); EVA-02 and SwiGLU use 'silu'. */
  act?: GateActivation;
  /** The gate is the second half of `fc1`'s output (timm's default true); false: the first half. */
  gateLast?: boolean;
  bias?: boolean;
  drop?: number;
  /** LayerNorm over the gated hidden layer before `fc2`, with this epsilon. */
  normEps?: number | null;
}

/**
 * GLU MLP with one packed input projection (timm's `GluMlp`): `a, b = split(fc1(x), 2)`, then
 * `fc2(norm(act(a) * b))` (or `a * act(b)` with `gateLast`). State-dict keys `fc1.*` (`[2h, C]`),
 * `norm.*`, `fc2.*`.
 */
export class GluMlp extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm | null;
  readonly fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(
    readonly inFeatures: number,
    readonly opts: GluMlpOptions = {},
  ) {
    super();
    this.config = { inFeatures, ...opts };
    const packed = opts.hiddenFeatures ?? 4 * inFeatures;
    check(
      Number.isInteger(packed) && packed > 0 && packed % 2 === 0,
      () => `GluMlp hiddenFeatures (the packed gate + value width) must be even, got ${packed}`,
    );
    const bias = opts.bias ?? true;
    this.fc1 = this.addModule('fc1', new Linear(inFeatures, packed, { bias }));
    this.act = gateActivation(opts.act ?? 'sigmoid');
    this.norm = opts.normEps != null ? this.addModule('norm', new LayerNorm(packed / 2, opts.normEps)) : null;
    this.fc2 = this.addModule('fc2', new Linear(packed / 2, opts.outFeatures ?? inFeatures, { bias }));
  }

  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    const p = this.opts.drop ?? 0;
    const t = opts.training ?? false;
    return tf.tidy(() => {
      const [a, b] = tf.split(this.fc1.forward(x), 2, -1);
      let h = (this.opts.gateLast ?? true) ? tf.mul(a, this.act(b)) : tf.mul(this.act(a), b);
      h = dropout(h, p, t);
      if (this.norm) h = this.norm.forward(h);
      return dropout(this.fc2.forward(h), p, t);
    });
  }
}
