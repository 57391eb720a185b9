import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { gelu } from '../../layers/activations.js';
import { BatchNorm2d } from '../../layers/batchNorm.js';
import { Conv2d } from '../../layers/conv2d.js';
import { ConvTranspose2d } from '../../layers/convTranspose2d.js';
import { normal } from '../../layers/init.js';
import { interpolateNhwc } from '../../layers/interpolate.js';
import { maxPool2d } from '../../layers/maxPool2d.js';
import { ForwardOptions, Module, Parameter } from '../../layers/module.js';
import { LayerNorm } from '../../layers/norm.js';
import { DenseClipTransformer } from './clipTransformer.js';
import { GroupNorm } from '../../layers/detection/groupNorm.js';

/** Config of {@link denseClipVisionTransformer} (DenseCLIP's `CLIPVisionTransformer` arguments). */
export interface DenseClipVisionTransformerConfig {
  /** Resolution the positional grid was made for (`inputResolution / patchSize` cells a side). */
  inputResolution: number;
  /** 16 (fpn strides 4, 8, 16, 32 via 4x / 2x upsampling) or 8. */
  patchSize: 8 | 16;
  width: number;
  layers: number;
  heads: number;
  outputDim: number;
  dropPathRate?: number;
  /** Blocks whose patch tokens feed fpn1..fpn4. */
  outIndices: number[];
  /** `ln_post` + `proj` and the global / dense embeddings (default true). */
  getEmbeddings?: boolean;
}

/** What {@link DenseClipVisionTransformer.forward} returns. */
export interface DenseClipVisionOutput {
  /** NHWC fpn1..fpn4 outputs (strides 4, 8, 16, 32 of the input). */
  features: tf.Tensor4D[];
  /** `[B, outputDim]` (with `getEmbeddings`). */
  globalEmbedding?: tf.Tensor2D;
  /** NHWC `[B, H/p, W/p, outputDim]` (with `getEmbeddings`). */
  visualEmbedding?: tf.Tensor4D;
}

type Op = { name: string | null; m: Module | null; fn?: (x: tf.Tensor) => tf.Tensor };

/** An `nn.Sequential` of norms, transposed convs and parameter-free ops, keyed by their indices. */
class FpnOps extends Module {
  constructor(private readonly ops: Op[]) {
    super();
    for (const o of ops) if (o.name && o.m) this.addModule(o.name, o.m);
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => this.ops.reduce((y, o) => (o.m ? (o.m.forward(y, opts) as tf.Tensor) : o.fn!(y)), x) as tf.Tensor4D);
  }
}

/**
 * DenseCLIP's `CLIPVisionTransformer` (Rao et al. 2022, sec. 3.4): OpenAI CLIP's ViT trunk (`conv1` without bias,
 * `class_embedding`, `positional_embedding`, `ln_pre`, `transformer.resblocks.*`, `ln_post`, `proj`, QuickGELU)
 * with dense outputs. The class token is `2 * class_embedding + positional_embedding[0]`; the spatial positions
 * are resized bilinearly in every forward from the `inputResolution / patch` grid to the actual grid. The
 * patch tokens after the blocks in `outIndices` go through `fpn1..fpn4` (GroupNorm(1, C), transposed convs,
 * BatchNorm, GELU, max-pools); with `getEmbeddings`, `ln_post(tokens) @ proj` gives the global (class token)
 * and per-pixel embeddings. Keys without CLIP's `visual.` prefix.
 */
export class DenseClipVisionTransformer extends Module {
  readonly conv1: Conv2d;
  readonly classEmbedding: Parameter;
  readonly positionalEmbedding: Parameter;
  readonly lnPre: LayerNorm;
  readonly transformer: DenseClipTransformer;
  readonly lnPost: LayerNorm | null;
  readonly proj: Parameter | null;
  readonly fpns: Module[];
  readonly spatialSize: number;
  readonly cfg: Required<DenseClipVisionTransformerConfig>;
  constructor(config: DenseClipVisionTransformerConfig) {
    super();
    const c = { dropPathRate: 0, getEmbeddings: true, ...config } as Required<DenseClipVisionTransformerConfig>;
    for (const k of ['inputResolution', 'width', 'layers', 'heads', 'outputDim'] as const) {
      check(
        Number.isInteger(c[k]) && c[k] > 0,
        () => `denseClipVisionTransformer: ${k} must be a positive integer, got ${JSON.stringify(c[k])}`,
      );
    }
    check(
      c.patchSize === 16 || c.patchSize === 8,
      () => `denseClipVisionTransformer: patchSize must be 8 or 16 (the fpn layouts of the official code), got ${c.patchSize}`,
    );
    check(
      Array.isArray(c.outIndices) &&
        c.outIndices.length >= 1 &&
        c.outIndices.length <= 4 &&
        c.outIndices.every((i) => Number.isInteger(i) && i >= 0 && i < c.layers),
      () => `denseClipVisionTransformer: outIndices must be up to 4 block indices in [0, ${c.layers}), got ${JSON.stringify(c.outIndices)}`,
    );
    this.cfg = c;
    this.config = { ...c };
    const w = c.width;
    const scale = w ** -0.5;
    this.spatialSize = Math.floor(c.inputResolution / c.patchSize);
    check(
      this.spatialSize > 0,
      () => `denseClipVisionTransformer: inputResolution ${c.inputResolution} is smaller than the patch ${c.patchSize}`,
    );
    this.conv1 = this.addModule('conv1', new Conv2d(3, w, c.patchSize, { stride: c.patchSize, bias: false }));
    this.classEmbedding = this.addParameter('class_embedding', normal([w], scale));
    this.positionalEmbedding = this.addParameter('positional_embedding', normal([this.spatialSize ** 2 + 1, w], scale));
    this.lnPre = this.addModule('ln_pre', new LayerNorm(w, 1e-5));
    this.transformer = this.addModule('transformer', new DenseClipTransformer(w, c.layers, c.heads, c.dropPathRate));
    this.lnPost = c.getEmbeddings ? this.addModule('ln_post', new LayerNorm(w, 1e-5)) : null;
    this.proj = c.getEmbeddings ? this.addParameter('proj', normal([w, c.outputDim], scale)) : null;
    const gn = () => new GroupNorm(1, w, 1e-5);
    const up = () => new ConvTranspose2d(w, w, 2, { stride: 2 });
    const pool = (k: number): Op => ({ name: null, m: null, fn: (x) => maxPool2d(x, k, k) });
    const seq = (ops: Op[]) => new FpnOps(ops);
    const fpns: Module[] =
      c.patchSize === 16
        ? [
            seq([
              { name: '0', m: gn() },
              { name: '1', m: up() },
              { name: '2', m: new BatchNorm2d(w) },
              { name: null, m: null, fn: gelu },
              { name: '4', m: up() },
            ]),
            seq([
              { name: '0', m: gn() },
              { name: '1', m: up() },
            ]),
            gn(),
            seq([{ name: '0', m: gn() }, pool(2)]),
          ]
        : [
            seq([
              { name: '0', m: gn() },
              { name: '1', m: up() },
            ]),
            gn(),
            seq([{ name: '0', m: gn() }, pool(2)]),
            seq([{ name: '0', m: gn() }, pool(4)]),
          ];
    this.fpns = fpns.map((m, i) => this.addModule(`fpn${i + 1}`, m));
  }

  /** Channels of the four fpn levels (all `width`). */
  get featureChannels(): number[] {
    return this.fpns.map(() => this.cfg.width);
  }

  /** Class + spatial positions for a `gh x gw` grid: `[1, 1 + gh*gw, C]`. */
  private positions(gh: number, gw: number): tf.Tensor3D {
    const s = this.spatialSize;
    const w = this.cfg.width;
    return tf.tidy(() => {
      const pos = this.positionalEmbedding.value;
      const cls = tf.add(tf.slice(pos, [0, 0], [1, w]), this.classEmbedding.value);
      const grid = tf.slice(pos, [1, 0], [s * s, w]).reshape([1, s, s, w]);
      const spatial = interpolateNhwc(grid, [gh, gw], { mode: 'bilinear' }).reshape([gh * gw, w]);
      return tf.concat([cls, spatial], 0).expandDims(0) as tf.Tensor3D;
    });
  }

  /** Like {@link forward}, plus the block outputs before the fpn ops (`trunk`, NHWC). */
  forwardWithTrunk(x: tf.Tensor, opts: ForwardOptions = {}): DenseClipVisionOutput & { trunk: tf.Tensor4D[] } {
    check(
      x.rank === 4 && x.shape[3] === 3,
      () => `denseClipVisionTransformer expects NHWC images [B, H, W, 3], got shape [${x.shape.join(', ')}]`,
    );
    const [b, h, w] = x.shape as [number, number, number, number];
    const p = this.cfg.patchSize;
    check(h % p === 0 && w % p === 0, () => `denseClipVisionTransformer: image size ${h}x${w} is not divisible by the patch size ${p}`);
    const gh = h / p;
    const gw = w / p;
    const c = this.cfg.width;
    type Out = DenseClipVisionOutput & { trunk: tf.Tensor4D[] };
    return tf.tidy(() => {
      const patches = this.conv1.forward(x).reshape([b, gh * gw, c]);
      const cls = tf.tile(this.classEmbedding.value.reshape([1, 1, c]), [b, 1, 1]);
      let t: tf.Tensor3D = tf.add(tf.concat([cls, patches], 1), this.positions(gh, gw)) as tf.Tensor3D;
      t = this.lnPre.forward(t) as tf.Tensor3D;
      const trunk: tf.Tensor4D[] = [];
      this.transformer.resblocks.items.forEach((blk, i) => {
        t = blk.forward(t, opts);
        if (this.cfg.outIndices.includes(i)) trunk.push(tf.slice(t, [0, 1, 0], [b, gh * gw, c]).reshape([b, gh, gw, c]) as tf.Tensor4D);
      });
      const features = trunk.map((f, i) => this.fpns[i].forward(f, opts) as tf.Tensor4D);
      const out: DenseClipVisionOutput & { trunk: tf.Tensor4D[] } = { features, trunk };
      if (this.lnPost && this.proj) {
        const e = tf.matMul(this.lnPost.forward(t).reshape([b * (1 + gh * gw), c]) as tf.Tensor2D, this.proj.value as tf.Tensor2D);
        const d = this.cfg.outputDim;
        const e3 = e.reshape([b, 1 + gh * gw, d]);
        out.globalEmbedding = tf.slice(e3, [0, 0, 0], [b, 1, d]).reshape([b, d]) as tf.Tensor2D;
        out.visualEmbedding = tf.slice(e3, [0, 1, 0], [b, gh * gw, d]).reshape([b, gh, gw, d]) as tf.Tensor4D;
      }
      return out as unknown as tf.TensorContainer;
    }) as unknown as Out;
  }

  /** NHWC images -> fpn features (+ global and dense embeddings). */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): DenseClipVisionOutput {
    const r = this.forwardWithTrunk(x, opts);
    tf.dispose(r.trunk);
    const { trunk: _t, ...rest } = r;
    return rest;
  }
}

/** Build a {@link DenseClipVisionTransformer}. */
export function denseClipVisionTransformer(config: DenseClipVisionTransformerConfig): DenseClipVisionTransformer {
  return new DenseClipVisionTransformer(config);
}
