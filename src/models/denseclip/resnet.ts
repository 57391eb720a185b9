import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { mergeHeads, splitHeads } from '../../layers/attention.js';
import { BatchNorm2d } from '../../layers/batchNorm.js';
import { Conv2d } from '../../layers/conv2d.js';
import { normal } from '../../layers/init.js';
import { interpolateNhwc } from '../../layers/interpolate.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../../layers/module.js';
import { avgPool2d } from './pooling.js';

/** Config of {@link clipResNetWithAttention} (DenseCLIP's `CLIPResNetWithAttention` arguments). */
export interface ClipResNetWithAttentionConfig {
  /** Bottleneck blocks per stage, e.g. RN50 `[3, 4, 6, 3]`. */
  layers: number[];
  outputDim: number;
  /** Resolution the attention-pool positional grid was made for (`inputResolution / 32` cells a side). */
  inputResolution: number;
  /** Stem width; stage widths are `4w, 8w, 16w, 32w`. */
  width: number;
}

/** What {@link ClipResNetWithAttention.forward} returns. */
export interface ClipResNetOutput {
  /** NHWC layer1..layer4 outputs (strides 4, 8, 16, 32). */
  features: tf.Tensor4D[];
  /** `[B, outputDim]`: the attention-pool output of the mean token. */
  globalFeat: tf.Tensor2D;
  /** NHWC `[B, H/32, W/32, outputDim]`: the attention-pool outputs of the pixels. */
  visualEmbeddings: tf.Tensor4D;
}

/** `nn.Sequential(OrderedDict(-1: AvgPool2d, 0: Conv1x1, 1: BatchNorm2d))` of a downsampling shortcut. */
class Downsample extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(
    inC: number,
    outC: number,
    readonly stride: number,
  ) {
    super();
    this.conv = this.addModule('0', new Conv2d(inC, outC, 1, { bias: false }));
    this.bn = this.addModule('1', new BatchNorm2d(outC));
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => this.bn.forward(this.conv.forward(this.stride > 1 ? avgPool2d(x, this.stride) : x), opts) as tf.Tensor4D);
  }
}

/**
 * CLIP's anti-aliased `Bottleneck` (Radford et al. 2021, sec. 2.4): 1x1 -> 3x3 -> (AvgPool(stride)) -> 1x1
 * (expansion 4), BatchNorm + ReLU, the shortcut average-pooled before its 1x1 conv; ReLU after the sum.
 */
export class ClipBottleneck extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample: Downsample | null;
  constructor(
    inplanes: number,
    planes: number,
    readonly stride = 1,
  ) {
    super();
    this.conv1 = this.addModule('conv1', new Conv2d(inplanes, planes, 1, { bias: false }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.addModule('conv2', new Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.addModule('conv3', new Conv2d(planes, planes * 4, 1, { bias: false }));
    this.bn3 = this.addModule('bn3', new BatchNorm2d(planes * 4));
    this.downsample =
      stride > 1 || inplanes !== planes * 4 ? this.addModule('downsample', new Downsample(inplanes, planes * 4, stride)) : null;
  }
  forward(x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let out: tf.Tensor = tf.relu(this.bn1.forward(this.conv1.forward(x), opts));
      out = tf.relu(this.bn2.forward(this.conv2.forward(out), opts));
      if (this.stride > 1) out = avgPool2d(out, this.stride);
      out = this.bn3.forward(this.conv3.forward(out), opts);
      const identity = this.downsample ? this.downsample.forward(x, opts) : x;
      return tf.relu(tf.add(out, identity)) as tf.Tensor4D;
    });
  }
}

/**
 * DenseCLIP's `AttentionPool2d`: tokens `[mean, x_1 .. x_HW]` plus positions (the spatial part resized
 * bilinearly from the `spacialDim` grid to the actual one in every forward), multi-head attention with EVERY
 * token as a query (`q_proj`, `k_proj`, `v_proj` with biases, `c_proj`). Keys `positional_embedding`
 * `(S*S + 1, C)`, `q_proj`, `k_proj`, `v_proj`, `c_proj`.
 */
export class AttentionPool2d extends Module {
  readonly positionalEmbedding: Parameter;
  readonly kProj: Linear;
  readonly qProj: Linear;
  readonly vProj: Linear;
  readonly cProj: Linear;
  constructor(
    readonly spacialDim: number,
    readonly embedDim: number,
    readonly numHeads: number,
    outputDim: number,
  ) {
    super();
    check(embedDim % numHeads === 0, () => `AttentionPool2d: ${numHeads} heads must divide the width ${embedDim}`);
    this.positionalEmbedding = this.addParameter('positional_embedding', normal([spacialDim ** 2 + 1, embedDim], embedDim ** -0.5));
    this.kProj = this.addModule('k_proj', new Linear(embedDim, embedDim));
    this.qProj = this.addModule('q_proj', new Linear(embedDim, embedDim));
    this.vProj = this.addModule('v_proj', new Linear(embedDim, embedDim));
    this.cProj = this.addModule('c_proj', new Linear(embedDim, outputDim));
  }
  /** NHWC `[B, H, W, C]` -> every token's output `[B, 1 + H*W, outputDim]` (token 0 = the mean token). */
  forward(x: tf.Tensor): tf.Tensor3D {
    const [b, h, w, c] = x.shape as [number, number, number, number];
    check(c === this.embedDim, () => `AttentionPool2d expected ${this.embedDim} channels, got ${c}`);
    const s = this.spacialDim;
    const n = 1 + h * w;
    const heads = this.numHeads;
    return tf.tidy(() => {
      const flat = x.reshape([b, h * w, c]);
      const pos = this.positionalEmbedding.value;
      const spatial = interpolateNhwc(tf.slice(pos, [1, 0], [s * s, c]).reshape([1, s, s, c]), [h, w], { mode: 'bilinear' }).reshape([
        h * w,
        c,
      ]);
      const posAll = tf.concat([tf.slice(pos, [0, 0], [1, c]), spatial], 0);
      const t = tf.add(tf.concat([tf.mean(flat, 1, true), flat], 1), posAll);
      const q = splitHeads(tf.mul(this.qProj.forward(t), (c / heads) ** -0.5), b, n, heads);
      const k = splitHeads(this.kProj.forward(t), b, n, heads);
      const v = splitHeads(this.vProj.forward(t), b, n, heads);
      const attn = tf.softmax(tf.matMul(q, k, false, true));
      return this.cProj.forward(mergeHeads(tf.matMul(attn as tf.Tensor3D, v), b, heads)) as tf.Tensor3D;
    });
  }
}

/**
 * DenseCLIP's `CLIPResNetWithAttention` (Rao et al. 2022, sec. 3.4; CLIP's modified ResNet, Radford et al. 2021):
 * a 3-conv stem with average pooling, four stages of anti-aliased bottlenecks, and CLIP's attention pool kept
 * dense (32 heads). Returns the four stage maps, the global feature and the per-pixel embeddings. Keys are
 * CLIP's `visual.*` keys without the prefix.
 */
export class ClipResNetWithAttention extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly stages: ModuleList<ClipBottleneck>[];
  readonly attnpool: AttentionPool2d;
  readonly cfg: ClipResNetWithAttentionConfig;
  constructor(config: ClipResNetWithAttentionConfig) {
    super();
    const { layers, outputDim, inputResolution, width } = config;
    check(
      Array.isArray(layers) && layers.length === 4 && layers.every((l) => Number.isInteger(l) && l > 0),
      () => `clipResNetWithAttention: layers must be 4 positive block counts, got ${JSON.stringify(layers)}`,
    );
    for (const [k, v] of Object.entries({ outputDim, inputResolution, width })) {
      check(Number.isInteger(v) && v > 0, () => `clipResNetWithAttention: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
    }
    check(width % 2 === 0, () => `clipResNetWithAttention: width must be even (the stem uses width / 2), got ${width}`);
    check(inputResolution >= 32, () => `clipResNetWithAttention: inputResolution must be at least 32, got ${inputResolution}`);
    this.cfg = { layers: layers.slice(), outputDim, inputResolution, width };
    this.config = { ...this.cfg };
    const w2 = width / 2;
    this.conv1 = this.addModule('conv1', new Conv2d(3, w2, 3, { stride: 2, padding: 1, bias: false }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(w2));
    this.conv2 = this.addModule('conv2', new Conv2d(w2, w2, 3, { padding: 1, bias: false }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(w2));
    this.conv3 = this.addModule('conv3', new Conv2d(w2, width, 3, { padding: 1, bias: false }));
    this.bn3 = this.addModule('bn3', new BatchNorm2d(width));
    let inplanes = width;
    this.stages = layers.map((n, i) => {
      const planes = width * 2 ** i;
      const stage = new ModuleList<ClipBottleneck>();
      for (let j = 0; j < n; j++) {
        stage.push(new ClipBottleneck(inplanes, planes, j === 0 && i > 0 ? 2 : 1));
        inplanes = planes * 4;
      }
      return this.addModule(`layer${i + 1}`, stage);
    });
    this.attnpool = this.addModule('attnpool', new AttentionPool2d(Math.floor(inputResolution / 32), width * 32, 32, outputDim));
  }

  /** Channels of layer1..layer4 (`4w, 8w, 16w, 32w`). */
  get featureChannels(): number[] {
    return [4, 8, 16, 32].map((m) => m * this.cfg.width);
  }

  /** NHWC images `[B, H, W, 3]` -> stage maps, global feature and per-pixel embeddings. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): ClipResNetOutput {
    check(
      x.rank === 4 && x.shape[3] === 3,
      () => `clipResNetWithAttention expects NHWC images [B, H, W, 3], got shape [${x.shape.join(', ')}]`,
    );
    check(
      (x.shape[1] as number) >= 32 && (x.shape[2] as number) >= 32,
      () => `clipResNetWithAttention: images must be at least 32x32, got ${x.shape[1]}x${x.shape[2]}`,
    );
    return tf.tidy(() => {
      let y: tf.Tensor = x;
      for (const [conv, bn] of [
        [this.conv1, this.bn1],
        [this.conv2, this.bn2],
        [this.conv3, this.bn3],
      ] as const)
        y = tf.relu(bn.forward(conv.forward(y), opts));
      y = avgPool2d(y, 2);
      const features: tf.Tensor4D[] = [];
      for (const stage of this.stages) {
        for (const blk of stage.items) y = blk.forward(y, opts);
        features.push(y as tf.Tensor4D);
      }
      const [b, h, w] = y.shape as [number, number, number, number];
      const d = this.cfg.outputDim;
      const tokens = this.attnpool.forward(y);
      const globalFeat = tf.slice(tokens, [0, 0, 0], [b, 1, d]).reshape([b, d]) as tf.Tensor2D;
      const visualEmbeddings = tf.slice(tokens, [0, 1, 0], [b, h * w, d]).reshape([b, h, w, d]) as tf.Tensor4D;
      return { features, globalFeat, visualEmbeddings } as unknown as tf.TensorContainer;
    }) as unknown as ClipResNetOutput;
  }
}

/** Build a {@link ClipResNetWithAttention}. */
export function clipResNetWithAttention(config: ClipResNetWithAttentionConfig): ClipResNetWithAttention {
  return new ClipResNetWithAttention(config);
}
