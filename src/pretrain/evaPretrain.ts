import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { truncNormal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, Parameter } from '../layers/module.js';
import type { Backbone } from '../models/backbone.js';
import type { ClipVisionTransformer } from '../models/clip/visionTransformer.js';
import { blockMask } from './blockMask.js';
import { clipTeacher, ClipTeacherOptions } from './clipTeacher.js';
import { evaLoss } from './featureLosses.js';
import type { MaskedEncoder } from './maskedEncoder.js';
import { SeedLike } from './rng.js';
import { maskedEncoderFor } from './simmim.js';

/** Options of {@link evaPretrain}. */
export interface EVAPretrainOptions {
  /**
   * The frozen CLIP image tower whose patch features are the target (EVA uses OpenAI CLIP-L/14): wrapped with
   * `clipTeacher` (frozen, computed outside the gradient tape). Not a submodule: the caller owns (disposes) it.
   */
  teacher?: ClipVisionTransformer;
  /** How the teacher's tokens are taken (default: `ln_post` then the projection). */
  teacherTokens?: ClipTeacherOptions;
  /** Width of the target features when no `teacher` is given (targets passed to `loss`). */
  teacherDim?: number;
  /** Masked patches per image of the block-wise masking (default 40% of the grid, EVA: 105 of 256). */
  numMaskingPatches?: number;
}

/** Options of {@link EVAPretrain.loss}. */
export interface EVALossOptions extends ForwardOptions {
  /** `[B, h, w]` 0/1, 1 = masked; default: `generateMask(B, seed)`. */
  mask?: tf.Tensor;
  /** Teacher patch features `[B, h * w, teacherDim]`; default: the CLIP teacher's of `x`. */
  target?: tf.Tensor;
  /** Seed of the default mask. */
  seed?: SeedLike;
}

/**
 * EVA masked image modeling (Fang et al. 2023, sec. 2.1): the student's masked patch embeddings are replaced by
 * a mask token (BEiT-style, block-wise masks), a linear head (`lm_head`) predicts the frozen CLIP teacher's
 * feature of every patch, and the loss is the negative cosine similarity on the masked patches
 * ({@link evaLoss}). The student is any backbone with a masked-encoder adapter whose output grid is the teacher's
 * patch grid (a ViT with the teacher's patch size and image size). Keys `encoder.*` (the backbone),
 * `mask_token` `[1, 1, embedDim]`, `lm_head.*`.
 */
export class EVAPretrain extends Module {
  readonly encoder: MaskedEncoder;
  readonly maskToken: Parameter;
  readonly lmHead: Linear;
  readonly teacher: ReturnType<typeof clipTeacher> | null;
  readonly teacherDim: number;
  readonly numMaskingPatches: number;

  constructor(
    readonly backbone: Backbone,
    opts: EVAPretrainOptions = {},
  ) {
    super();
    check(
      backbone.numClasses === 0,
      () => `EVA pretraining needs a backbone without classifier: build it with numClasses: 0, got numClasses ${backbone.numClasses}`,
    );
    this.encoder = maskedEncoderFor(backbone);
    this.teacher = opts.teacher ? clipTeacher(opts.teacher, opts.teacherTokens) : null;
    const dim = opts.teacherDim ?? this.teacher?.dim;
    check(Number.isInteger(dim) && dim! > 0, () => `teacherDim must be a positive integer (or give a teacher), got ${opts.teacherDim}`);
    if (this.teacher)
      check(
        dim === this.teacher.dim,
        () => `teacherDim ${opts.teacherDim} differs from the CLIP teacher's feature width ${this.teacher!.dim}`,
      );
    this.teacherDim = dim!;
    const grid = this.grid;
    if (opts.teacher) {
      const tg = opts.teacher.gridSize;
      check(
        tg[0] === grid[0] && tg[1] === grid[1],
        () => `the CLIP teacher's patch grid ${tg[0]}x${tg[1]} differs from the student's output grid ${grid[0]}x${grid[1]}`,
      );
    }
    this.numMaskingPatches = opts.numMaskingPatches ?? Math.round(0.4 * grid[0] * grid[1]);
    const { teacher: _teacher, ...plain } = opts;
    void _teacher;
    this.config = { ...plain, teacherDim: this.teacherDim, numMaskingPatches: this.numMaskingPatches };
    this.addModule('encoder', backbone);
    this.maskToken = this.addParameter('mask_token', truncNormal([1, 1, this.encoder.embedDim], 0.02));
    this.lmHead = this.addModule('lm_head', new Linear(this.encoder.numFeatures, this.teacherDim));
  }

  /** The student's output grid at its configured image size (the mask grid). */
  get grid(): [number, number] {
    const size = (this.backbone.config.imgSize as number | [number, number] | undefined) ?? 224;
    const [h, w] = Array.isArray(size) ? size : [size, size];
    return [h / this.encoder.stride, w / this.encoder.stride];
  }

  /** Trained without weight decay: the mask token. */
  noWeightDecay(): string[] {
    return ['mask_token'];
  }

  /** Block-wise masks `[batch, h, w]` (BEiT / EVA's `MaskingGenerator`), 1 = masked. */
  generateMask(batch: number, seed?: SeedLike): tf.Tensor3D {
    return blockMask({ inputSize: this.grid, numMaskingPatches: this.numMaskingPatches, batch, seed }) as tf.Tensor3D;
  }

  /** Predicted teacher features of every patch `[B, h * w, teacherDim]`, masked patch embeddings replaced by the mask token. */
  forward(x: tf.Tensor, opts: ForwardOptions & { mask: tf.Tensor }): tf.Tensor3D {
    this.encoder.checkInput(x);
    const [b, H, W] = x.shape as number[];
    const s = this.encoder.stride;
    check(
      opts.mask.rank === 3 && opts.mask.shape[0] === b && opts.mask.shape[1] === H / s && opts.mask.shape[2] === W / s,
      () => `EVA: expected a mask [${b}, ${H / s}, ${W / s}], got shape [${opts.mask.shape.join(', ')}]`,
    );
    return tf.tidy(() => {
      const edit = (t: tf.Tensor4D) => {
        const w = opts.mask.toFloat().expandDims(-1);
        return tf.add(tf.mul(t, tf.sub(1, w)), tf.mul(this.maskToken.value.reshape([1, 1, 1, -1]), w));
      };
      const f = this.encoder.encode(x, edit, opts);
      const [, h, w, c] = f.shape;
      return this.lmHead.forward(f.reshape([b, h * w, c])) as tf.Tensor3D;
    });
  }

  /**
   * The EVA loss of a batch: negative cosine between the predictions and the teacher's patch features on the
   * masked patches. With a CLIP `teacher`, `target` defaults to its patch features of `x` (class token dropped)
   * and `mask` to block-wise masks (end to end: `loss(x, { seed, training: true })`).
   */
  loss(x: tf.Tensor, opts: EVALossOptions = {}): tf.Scalar {
    check(
      opts.target || this.teacher,
      () => 'EVA.loss: pass { target } or build the model with a CLIP teacher (evaPretrain(backbone, { teacher }))',
    );
    const b = x.shape[0];
    const [gh, gw] = this.grid;
    if (opts.target)
      check(
        opts.target.rank === 3 &&
          opts.target.shape[0] === b &&
          opts.target.shape[1] === gh * gw &&
          opts.target.shape[2] === this.teacherDim,
        () => `EVA: expected teacher features [${b}, ${gh * gw}, ${this.teacherDim}], got [${opts.target!.shape.join(', ')}]`,
      );
    return tf.tidy(() => {
      let target = opts.target ?? null;
      if (!target) {
        const t = this.teacher!(x);
        target = t.features.slice([0, 1, 0], [b, gh * gw, this.teacherDim]);
      }
      const mask = opts.mask ?? this.generateMask(b, opts.seed);
      return evaLoss(this.forward(x, { ...opts, mask }), target, mask);
    });
  }

  override dispose(): void {
    this.encoder.dispose();
    super.dispose();
  }
}

/** Wrap a backbone (built with `numClasses: 0`) for EVA pretraining against a frozen CLIP image tower. */
export function evaPretrain(backbone: Backbone, opts: EVAPretrainOptions = {}): EVAPretrain {
  return new EVAPretrain(backbone, opts);
}
