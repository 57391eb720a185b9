import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { gelu } from '../../layers/activations.js';
import { mergeHeads, splitHeads } from '../../layers/attention.js';
import { dropout } from '../../layers/dropPath.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { tensorArg, TensorOrOptions } from './tensorArgs.js';

/** Config of {@link contextDecoder} (DenseCLIP's `ContextDecoder` arguments). */
export interface ContextDecoderConfig {
  transformerWidth: number;
  transformerHeads: number;
  transformerLayers: number;
  visualDim: number;
  /** Dropout after the attention projections and in the MLP (active in training). Default 0.1. */
  dropout?: number;
}

/**
 * DenseCLIP's `Attention`: separate bias-free `q_proj`, `k_proj`, `v_proj`, softmax of `q k^T * head_dim^-0.5`
 * over the keys, `proj` with bias. Queries `[B, N, C]`, keys/values `[B, M, C]`.
 */
export class DecoderAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly proj: Linear;
  readonly scale: number;
  constructor(
    readonly dim: number,
    readonly numHeads: number,
    readonly projDrop = 0,
  ) {
    super();
    check(
      Number.isInteger(numHeads) && numHeads > 0 && dim % numHeads === 0,
      () => `contextDecoder: transformerHeads ${numHeads} must divide transformerWidth ${dim}`,
    );
    this.qProj = this.addModule('q_proj', new Linear(dim, dim, { bias: false }));
    this.kProj = this.addModule('k_proj', new Linear(dim, dim, { bias: false }));
    this.vProj = this.addModule('v_proj', new Linear(dim, dim, { bias: false }));
    this.proj = this.addModule('proj', new Linear(dim, dim));
    this.scale = (dim / numHeads) ** -0.5;
  }
  forward(q: tf.Tensor, opts: ForwardOptions & { kv?: tf.Tensor } = {}): tf.Tensor3D {
    const kv = opts.kv ?? q;
    const [b, n] = q.shape as [number, number, number];
    const m = kv.shape[1] as number;
    const h = this.numHeads;
    return tf.tidy(() => {
      const qh = splitHeads(this.qProj.forward(q), b, n, h);
      const kh = splitHeads(this.kProj.forward(kv), b, m, h);
      const vh = splitHeads(this.vProj.forward(kv), b, m, h);
      const attn = tf.softmax(tf.mul(tf.matMul(qh, kh, false, true), this.scale));
      const o = mergeHeads(tf.matMul(attn as tf.Tensor3D, vh), b, h);
      return dropout(this.proj.forward(o), this.projDrop, opts.training ?? false) as tf.Tensor3D;
    });
  }
}

/**
 * DenseCLIP's `TransformerDecoderLayer`: `x + self_attn(norm1(x))`, `x + cross_attn(norm2(x), memory)` (the
 * memory is not re-normalised), `x + dropout(mlp(norm3(x)))` with `mlp = Linear -> GELU -> Dropout -> Linear`.
 */
export class ContextDecoderLayer extends Module {
  readonly selfAttn: DecoderAttention;
  readonly crossAttn: DecoderAttention;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;
  readonly mlp: MlpSequential;
  constructor(
    readonly dim: number,
    heads: number,
    readonly drop: number,
  ) {
    super();
    this.selfAttn = this.addModule('self_attn', new DecoderAttention(dim, heads, drop));
    this.crossAttn = this.addModule('cross_attn', new DecoderAttention(dim, heads, drop));
    this.norm1 = this.addModule('norm1', new LayerNorm(dim, 1e-5));
    this.norm2 = this.addModule('norm2', new LayerNorm(dim, 1e-5));
    this.norm3 = this.addModule('norm3', new LayerNorm(dim, 1e-5));
    // nn.Sequential indices 0 (Linear), 1 (GELU), 2 (Dropout), 3 (Linear)
    this.mlp = this.addModule('mlp', new MlpSequential(dim, drop));
  }
  forward(x: tf.Tensor, opts: ForwardOptions & { memory?: tf.Tensor } = {}): tf.Tensor3D {
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let y = tf.add(x, this.selfAttn.forward(this.norm1.forward(x), { training }));
      y = tf.add(y, this.crossAttn.forward(this.norm2.forward(y), { kv: opts.memory, training }));
      return tf.add(y, dropout(this.mlp.forward(this.norm3.forward(y), { training }), this.drop, training)) as tf.Tensor3D;
    });
  }
}

/** `nn.Sequential(Linear(w, 4w), GELU, Dropout, Linear(4w, w))`: keys `0.*`, `3.*`. */
class MlpSequential extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(
    dim: number,
    readonly drop: number,
  ) {
    super();
    this.fc1 = this.addModule('0', new Linear(dim, dim * 4));
    this.fc2 = this.addModule('3', new Linear(dim * 4, dim));
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(dropout(gelu(this.fc1.forward(x)), this.drop, opts.training ?? false)));
  }
}

/** `nn.Sequential(LayerNorm(a), Linear(a, b)[, LayerNorm(b)])`: keys `0.*`, `1.*`, `2.*`. */
class NormLinear extends Module {
  readonly items: Module[] = [];
  constructor(inDim: number, outDim: number, normAfter: boolean) {
    super();
    this.items.push(this.addModule('0', new LayerNorm(inDim, 1e-5)));
    this.items.push(this.addModule('1', new Linear(inDim, outDim)));
    if (normAfter) this.items.push(this.addModule('2', new LayerNorm(outDim, 1e-5)));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.items.reduce((y, m) => m.forward(y) as tf.Tensor, x));
  }
}

/**
 * DenseCLIP's `ContextDecoder` (Rao et al. 2022, sec. 3.3, "context-aware prompting"): text queries attend to
 * the visual context. `memory = memory_proj(visual)` (LN -> Linear -> LN), `x = text_proj(text)` (LN ->
 * Linear), the decoder layers, `out_proj` (LN -> Linear). forward(text `[B, K, visualDim]`, visual
 * `[B, N, visualDim]`) -> `[B, K, visualDim]`.
 */
export class ContextDecoder extends Module {
  readonly memoryProj: NormLinear;
  readonly textProj: NormLinear;
  readonly decoder: ModuleList<ContextDecoderLayer>;
  readonly outProj: NormLinear;
  constructor(readonly cfg: ContextDecoderConfig) {
    super();
    const { transformerWidth: w, transformerHeads: h, transformerLayers: l, visualDim: v } = cfg;
    for (const [k, val] of Object.entries({ transformerWidth: w, transformerHeads: h, transformerLayers: l, visualDim: v })) {
      check(Number.isInteger(val) && val > 0, () => `contextDecoder: ${k} must be a positive integer, got ${JSON.stringify(val)}`);
    }
    this.config = { dropout: 0.1, ...cfg };
    const drop = cfg.dropout ?? 0.1;
    this.memoryProj = this.addModule('memory_proj', new NormLinear(v, w, true));
    this.textProj = this.addModule('text_proj', new NormLinear(v, w, false));
    this.decoder = this.addModule('decoder', new ModuleList<ContextDecoderLayer>());
    for (let i = 0; i < l; i++) this.decoder.push(new ContextDecoderLayer(w, h, drop));
    this.outProj = this.addModule('out_proj', new NormLinear(w, v, false));
  }

  /** The decoder's values at every stage (memory, queries, each layer's output, the result), for inspection. */
  forwardWithIntermediates(
    text: tf.Tensor,
    visual: tf.Tensor,
    opts: ForwardOptions = {},
  ): { memory: tf.Tensor3D; queries: tf.Tensor3D; layers: tf.Tensor3D[]; output: tf.Tensor3D } {
    const v = this.cfg.visualDim;
    check(text.rank === 3 && text.shape[2] === v, () => `contextDecoder: text must be [B, K, ${v}], got [${text.shape.join(', ')}]`);
    check(
      visual.rank === 3 && visual.shape[2] === v,
      () => `contextDecoder: visual must be [B, N, ${v}], got [${visual.shape.join(', ')}]`,
    );
    check(
      text.shape[0] === visual.shape[0],
      () => `contextDecoder: text batch ${text.shape[0]} and visual batch ${visual.shape[0]} differ`,
    );
    return tf.tidy(() => {
      const memory = this.memoryProj.forward(visual) as tf.Tensor3D;
      const queries = this.textProj.forward(text) as tf.Tensor3D;
      const layers: tf.Tensor3D[] = [];
      let x = queries;
      for (const layer of this.decoder.items) {
        x = layer.forward(x, { memory, training: opts.training });
        layers.push(x);
      }
      return { memory, queries, layers, output: this.outProj.forward(x) as tf.Tensor3D };
    });
  }

  /** forward(text `[B, K, visualDim]`, visual `[B, N, visualDim]`, opts?) -> `[B, K, visualDim]`. */
  forward(text: tf.Tensor, visual?: TensorOrOptions, opts?: ForwardOptions): tf.Tensor3D {
    const a = tensorArg(visual, opts);
    check(a.t, () => 'contextDecoder: forward(text, visual) needs the visual context tensor');
    return tf.tidy(() => this.forwardWithIntermediates(text, a.t!, a.opts).output);
  }
}

/** Build a {@link ContextDecoder}. */
export function contextDecoder(config: ContextDecoderConfig): ContextDecoder {
  return new ContextDecoder(config);
}
