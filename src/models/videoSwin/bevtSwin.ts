import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ConvTranspose2d } from '../../layers/convTranspose2d.js';
import { dropout } from '../../layers/dropPath.js';
import { truncNormal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { ForwardOptions, ModuleList, Parameter } from '../../layers/module.js';
import { PatchEmbed } from '../../layers/patchEmbed.js';
import { resolveVideoSwinConfig, VideoSwinConfig } from './config.js';
import { VideoSwinTrunk } from './videoSwinTrunk.js';
import { ConvTranspose3d } from './convTranspose3d.js';
import { resizeMaskNearest } from './maskResize.js';

/** Options of {@link SwinTransformerBEVT.forward} / {@link SwinTransformerBEVT.forwardImage}. */
export interface BevtForwardOptions extends ForwardOptions {
  /**
   * 0/1 (or bool) mask, 1 = masked: video `[B, T', h, w]`, image `[B, h, w]` (a mask without the batch
   * axis serves the whole batch). Nearest-resized to the patch grid.
   */
  mask?: tf.Tensor | null;
}

/** A stream's output tokens and its stage maps (before their merging). */
export interface BevtStreamOutput<F extends tf.Tensor> {
  /** `[B, L, C_last]`, tokens in (t, h, w) raster order. */
  tokens: tf.Tensor3D;
  features: F[];
}

/**
 * BEVT's two-stream pretraining backbone (Wang et al. 2022, "BEVT: BERT Pretraining of Video
 * Transformers", sec. 3; the official `SwinTransformerBEVT`): one set of Video Swin stages shared by a
 * video stream (3-D windows) and an image stream (2-D windows of `windowSize[1]`, the temporal-offset-0
 * bias), masked tokens replaced by `mask_token` after the patch embedding, and a small neck on the last
 * two stages giving tokens at 1/16 resolution (video: twice the temporal patches). Shared: `layers.*`,
 * `mask_token`, `norm`; video only `patch_embed`, `lm_down_st`, `fpn_s`, `fpn_t`; image only
 * `patch_embed_2d`, `lm_down`, `fpn`.
 */
export class SwinTransformerBEVT extends VideoSwinTrunk {
  readonly patchEmbed2d: PatchEmbed;
  readonly maskToken: Parameter;
  readonly lmDown: Linear;
  readonly fpn: ModuleList<ConvTranspose2d>;
  readonly lmDownSt: ModuleList<Linear>;
  readonly fpnS: ModuleList<ConvTranspose3d>;
  readonly fpnT: ModuleList<ConvTranspose3d>;
  constructor(config: VideoSwinConfig = {}) {
    const cfg = resolveVideoSwinConfig(config);
    check(cfg.depths.length === 4, () => `BEVT's neck reads stages 2 and 3: expected 4 stages, got depths ${JSON.stringify(cfg.depths)}`);
    super(cfg);
    const c = this.numFeatures;
    const [, ph, pw] = cfg.patchSize;
    check(ph === pw, () => `the image stream uses a square patch (patchSize[1]); got ${ph}x${pw}`);
    this.patchEmbed2d = this.addModule(
      'patch_embed_2d',
      new PatchEmbed({ patchSize: ph, inChans: cfg.inChans, embedDim: cfg.embedDim, norm: cfg.patchNorm, normEps: cfg.normEps }),
    );
    this.maskToken = this.addParameter('mask_token', truncNormal([1, 1, cfg.embedDim], 0.02));
    const c15 = c + Math.floor(c / 2);
    this.lmDown = this.addModule('lm_down', new Linear(c15, c));
    this.fpn = this.addModule('fpn', new ModuleList([new ConvTranspose2d(c, c, 2)]));
    this.lmDownSt = this.addModule('lm_down_st', new ModuleList([new Linear(c15, c)]));
    this.fpnS = this.addModule('fpn_s', new ModuleList([new ConvTranspose3d(c, c, [1, 2, 2])]));
    this.fpnT = this.addModule('fpn_t', new ModuleList([new ConvTranspose3d(c, c, [2, 1, 1])]));
  }

  /** Replace masked tokens of `x` `[B, ...grid, C]` by `mask_token` (`x (1 - m) + token m`). */
  private applyMask(x: tf.Tensor, mask: tf.Tensor, what: string): tf.Tensor {
    const grid = x.shape.slice(1, -1);
    const b = x.shape[0];
    const want = grid.length;
    check(
      mask.rank === want + 1 || mask.rank === want,
      () => `${what} mask: expected [B, ${want === 3 ? "T', " : ''}h, w] (0/1, 1 = masked), got shape [${mask.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      const m0 = mask.rank === want ? tf.tile(mask.toFloat().expandDims(0), [b, ...new Array(want).fill(1)]) : mask;
      check(m0.shape[0] === b, () => `${what} mask has batch ${m0.shape[0]}, the input ${b}`);
      const m = resizeMaskNearest(m0, grid).expandDims(-1);
      return tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(this.maskToken.value, m));
    });
  }

  /** Video stream: clip `[B, T, H, W, C]` -> tokens `[B, 2 T' (H/16) (W/16), C_last]`. */
  forward(video: tf.Tensor, opts: BevtForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const r = this.forwardVideoStream(video, opts);
      tf.dispose(r.features);
      return r.tokens;
    });
  }

  /** Image stream: images `[B, H, W, C]` -> tokens `[B, (H/16) (W/16), C_last]`. */
  forwardImage(image: tf.Tensor, opts: BevtForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const r = this.forwardImageStream(image, opts);
      tf.dispose(r.features);
      return r.tokens;
    });
  }

  /** {@link forward} with the stage maps (NTHWC, before their merging). */
  forwardVideoStream(video: tf.Tensor, opts: BevtForwardOptions = {}): BevtStreamOutput<tf.Tensor5D> {
    this.checkInput(video);
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let x: tf.Tensor = this.patchEmbed.forward(video);
      if (opts.mask) x = this.applyMask(x, opts.mask, 'video');
      x = dropout(x, this.cfg.dropRate, training);
      const feats = this.runStages(x as tf.Tensor5D, opts);
      const [x3, x4] = [feats[2], feats[3]];
      const up = this.fpnS.items[0].forward(x4);
      check(
        up.shape[2] === x3.shape[2] && up.shape[3] === x3.shape[3],
        () => `BEVT's neck needs stage 2 at twice the size of stage 3, got ${x3.shape.slice(1, 4)} and ${x4.shape.slice(1, 4)}`,
      );
      let y: tf.Tensor = this.lmDownSt.items[0].forward(tf.concat([x3, up], -1));
      y = this.norm.forward(this.fpnT.items[0].forward(y));
      return { tokens: y.reshape([y.shape[0], -1, this.numFeatures]) as tf.Tensor3D, features: feats };
    });
  }

  /** {@link forwardImage} with the stage maps (NHWC, before their merging). */
  forwardImageStream(image: tf.Tensor, opts: BevtForwardOptions = {}): BevtStreamOutput<tf.Tensor4D> {
    check(
      image.rank === 4 && image.shape[3] === this.inChans,
      () => `expected an NHWC image batch [B, H, W, ${this.inChans}], got shape [${image.shape.join(', ')}]`,
    );
    const training = opts.training ?? false;
    return tf.tidy(() => {
      let x: tf.Tensor = this.patchEmbed2d.forward(image);
      if (opts.mask) x = this.applyMask(x, opts.mask, 'image');
      x = dropout(x, this.cfg.dropRate, training);
      const feats: tf.Tensor4D[] = [];
      let y = x as tf.Tensor4D;
      for (const layer of this.layers.items) {
        const r = layer.forwardImage(y, opts);
        feats.push(r.out);
        y = r.down;
      }
      const [x3, x4] = [feats[2], feats[3]];
      const up = this.fpn.items[0].forward(x4);
      let z: tf.Tensor = this.lmDown.forward(tf.concat([x3, up], -1));
      z = this.norm.forward(z);
      return { tokens: z.reshape([z.shape[0], -1, this.numFeatures]) as tf.Tensor3D, features: feats };
    });
  }

  /** timm-style no-decay names: the bias tables and the mask token. */
  override noWeightDecay(): string[] {
    return [...super.noWeightDecay(), 'mask_token'];
  }

  /** BEVT's inflation also copies the 2-D patch embedding to the image stream. */
  protected override inflateExtras(sd: Record<string, tf.Tensor>): void {
    for (const k of ['proj.weight', 'proj.bias', 'norm.weight', 'norm.bias'])
      if (sd[`patch_embed.${k}`]) sd[`patch_embed_2d.${k}`] = sd[`patch_embed.${k}`];
  }
}

/** Build BEVT's two-stream backbone from `SwinTransformerBEVT` arguments in camelCase (4 stages). */
export function bevtSwin(config: VideoSwinConfig = {}): SwinTransformerBEVT {
  return new SwinTransformerBEVT(config);
}
