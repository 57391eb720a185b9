import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { splitQkv } from '../layers/attention.js';
import { normal } from '../layers/init.js';
import { Linear } from '../layers/linear.js';
import { ForwardOptions, Module, ModuleList, Parameter } from '../layers/module.js';
import { LayerNorm } from '../layers/norm.js';
import type { ClipVisionTransformer } from '../models/clip/visionTransformer.js';
import { VisionTransformer } from '../models/vit/visionTransformer.js';
import { clipTeacher } from './clipTeacher.js';
import { milanLoss } from './featureLosses.js';
import { gatherTokens } from './gatherTokens.js';
import { PromptingDecoderBlock } from './promptingDecoderBlock.js';
import { randomMasking, TokenMasking } from './randomMasking.js';
import { SeedLike } from './rng.js';
import { semanticMasking } from './semanticMasking.js';
import type { Teacher } from './teacher.js';
import { sincosPosEmbed2d } from './sincosPosEmbed.js';
import { vitEmbed, vitTrunk } from './vitMaskedEncoder.js';
import { xavierInitLinears } from './xavierInit.js';

export type { Teacher, TeacherOutput } from './teacher.js';

/**
 * A frozen ViT as a MILAN / EVA teacher: its final-normed tokens `[B, 1 + L, D]` (prefix tokens other
 * than the class token removed) and, as importance, the last block's class-token attention over the
 * patches averaged over heads (MILAN sec. 3.2 uses CLIP's). The ViT needs a class token and a plain
 * attention (no q/k norm).
 */
export function vitTeacher(model: VisionTransformer): Teacher {
  check(model.clsToken !== null, 'a ViT teacher needs a class token (classToken: true)');
  return (images) => {
    const outs = tf.tidy(() => {
      const e = vitEmbed(model, images, null);
      let y: tf.Tensor = tf.concat([e.prefix!, e.patches], 1);
      if (model.normPre) y = model.normPre.forward(y);
      const blocks = model.blocks.items;
      for (let i = 0; i < blocks.length - 1; i++) y = blocks[i].forward(y);
      const last = blocks[blocks.length - 1];
      const [b, n, c] = y.shape as number[];
      const heads = last.attn.opts.numHeads;
      check(!last.attn.qNorm, 'vitTeacher: attention with q/k norm is not supported for the importance map');
      const [q, k] = splitQkv(last.attn.qkv.forward(last.norm1.forward(y)), b, n, heads);
      const clsQ = q.slice([0, 0, 0], [b * heads, 1, c / heads]);
      const probs = tf.softmax(tf.matMul(tf.mul(clsQ, last.attn.scale) as tf.Tensor3D, k, false, true)); // [B*h, 1, N]
      const np = model.numPrefixTokens;
      const importance = tf.mean(probs.reshape([b, heads, n]), 1).slice([0, np], [b, n - np]);
      y = last.forward(y);
      let feats = model.norm ? model.norm.forward(y) : y;
      if (np > 1) feats = tf.concat([feats.slice([0, 0, 0], [b, 1, c]), feats.slice([0, np, 0], [b, n - np, c])], 1);
      return [feats, importance];
    });
    return { features: outs[0] as tf.Tensor3D, importance: outs[1] as tf.Tensor2D };
  };
}

/** Options of {@link milan} (the official `MaskedAutoencoderViT` decoder arguments, camelCase). */
export interface MILANOptions {
  /** Width of the teacher's features (the decoder predicts them); taken from `teacher` when one is given. */
  teacherDim?: number;
  /**
   * A frozen CLIP image tower as the feature target (MILAN sec. 3.1 uses CLIP ViT-B/16): wrapped with
   * `clipTeacher` (frozen, computed outside the gradient tape), so `loss(x)` needs neither `target` nor
   * `masking`. Not a submodule: the state dict keeps the official keys and the caller owns (disposes) it.
   */
  teacher?: ClipVisionTransformer;
  /** Decoder width (default 512), blocks (8), heads (16). */
  decoderDim?: number;
  decoderDepth?: number;
  decoderNumHeads?: number;
  mlpRatio?: number;
  /** Fraction of patches removed (default 0.75). */
  maskRatio?: number;
}

/** Options of a MILAN forward pass. */
export interface MILANForwardOptions extends ForwardOptions {
  /** Token masking (e.g. {@link MILAN.generateMasking}); 1 = removed. */
  masking: TokenMasking;
}

/** Options of {@link MILAN.loss}. */
export interface MILANLossOptions extends ForwardOptions {
  /** Token masking; default (with a `teacher`): semantic-aware sampling from the teacher's importance, seeded by `seed`. */
  masking?: TokenMasking;
  /** Teacher features `[B, 1 + L, teacherDim]`; default (with a `teacher`): the teacher's features of `x`. */
  target?: tf.Tensor;
  /** Seed of the default masking. */
  seed?: SeedLike;
}

/**
 * MILAN (Hou et al. 2022): a ViT encoder sees only the visible patches (MAE-style, sec. 3.1), chosen by
 * semantic-aware sampling from the teacher's attention (sec. 3.2, {@link semanticMasking}); the prompting
 * decoder (sec. 3.3) updates only the mask tokens, which attend to the fixed encoded visible tokens, and
 * predicts the frozen teacher's features of every token (class token included), scored by
 * {@link milanLoss}. State-dict keys: the ViT's under `encoder.*`, then the official `decoder_embed`,
 * `mask_token`, `decoder_pos_embed` (frozen sin-cos), `decoder_blocks.i.{norm1, attn.q, attn.kv,
 * attn.proj, norm2, mlp}`, `decoder_norm`, `decoder_pred`. The ViT must have a class token and no classifier.
 */
export class MILAN extends Module {
  readonly decoderEmbed: Linear;
  readonly maskToken: Parameter;
  readonly decoderPosEmbed: Parameter;
  readonly decoderBlocks: PromptingDecoderBlock[] = [];
  readonly decoderNorm: LayerNorm;
  readonly decoderPred: Linear;
  readonly opts: Required<Omit<MILANOptions, 'teacher'>>;
  /** The frozen CLIP teacher (`opts.teacher` wrapped by `clipTeacher`), or null. */
  readonly teacher: ReturnType<typeof clipTeacher> | null;

  constructor(
    readonly backbone: VisionTransformer,
    opts: MILANOptions,
  ) {
    super();
    check(backbone instanceof VisionTransformer, () => `MILAN needs a ViT backbone, got ${(backbone as object).constructor.name}`);
    check(
      backbone.numClasses === 0,
      () => `MILAN needs a backbone without classifier: build it with numClasses: 0, got numClasses ${backbone.numClasses}`,
    );
    check(
      backbone.clsToken !== null && backbone.numPrefixTokens === 1,
      () => `MILAN needs a ViT with a class token and no register tokens (got ${backbone.numPrefixTokens} prefix tokens)`,
    );
    this.teacher = opts.teacher ? clipTeacher(opts.teacher) : null;
    const teacherDim = opts.teacherDim ?? this.teacher?.dim;
    check(
      Number.isInteger(teacherDim) && teacherDim! > 0,
      () => `teacherDim must be a positive integer (or give a teacher), got ${opts.teacherDim}`,
    );
    if (this.teacher) {
      check(
        teacherDim === this.teacher.dim,
        () => `teacherDim ${opts.teacherDim} differs from the CLIP teacher's feature width ${this.teacher!.dim}`,
      );
      const tg = opts.teacher!.gridSize;
      check(
        tg[0] === backbone.gridSize[0] && tg[1] === backbone.gridSize[1],
        () =>
          `the CLIP teacher's patch grid ${tg[0]}x${tg[1]} differs from the student's ${backbone.gridSize[0]}x${backbone.gridSize[1]} (MILAN predicts the teacher's feature of every token)`,
      );
    }
    const { teacher: _teacher, ...plain } = opts;
    void _teacher;
    this.config = { ...plain, teacherDim };
    this.opts = {
      teacherDim: teacherDim!,
      decoderDim: opts.decoderDim ?? 512,
      decoderDepth: opts.decoderDepth ?? 8,
      decoderNumHeads: opts.decoderNumHeads ?? 16,
      mlpRatio: opts.mlpRatio ?? 4,
      maskRatio: opts.maskRatio ?? 0.75,
    };
    const d = this.opts.decoderDim;
    this.addModule('encoder', backbone);
    this.decoderEmbed = this.addModule('decoder_embed', new Linear(backbone.embedDim, d));
    this.maskToken = this.addParameter('mask_token', normal([1, 1, d], 0.02));
    this.decoderPosEmbed = this.addParameter('decoder_pos_embed', sincosPosEmbed2d(d, backbone.gridSize, true), undefined, false);
    const blocks = this.addModule('decoder_blocks', new ModuleList<PromptingDecoderBlock>());
    for (let i = 0; i < this.opts.decoderDepth; i++) {
      this.decoderBlocks.push(
        blocks.push(
          new PromptingDecoderBlock({ dim: d, numHeads: this.opts.decoderNumHeads, mlpRatio: this.opts.mlpRatio, qkvBias: true }),
        ),
      );
    }
    this.decoderNorm = this.addModule('decoder_norm', new LayerNorm(d, 1e-5));
    this.decoderPred = this.addModule('decoder_pred', new Linear(d, this.opts.teacherDim));
    xavierInitLinears(this, [backbone]);
  }

  /** Trained without weight decay (with the encoder's own `noWeightDecay()`): the mask token. */
  noWeightDecay(): string[] {
    return ['mask_token'];
  }

  /** Number of patch tokens of the backbone's image size. */
  get numPatches(): number {
    return this.backbone.gridSize[0] * this.backbone.gridSize[1];
  }

  /** A masking for a batch: semantic-aware from `importance` `[B, L]` when given, else uniformly random. */
  generateMasking(batch: number, seed?: SeedLike, importance?: tf.Tensor2D): TokenMasking {
    if (importance) {
      check(
        importance.shape[0] === batch && importance.shape[1] === this.numPatches,
        () => `importance must be [${batch}, ${this.numPatches}], got [${importance.shape.join(', ')}]`,
      );
      return semanticMasking(importance, { maskRatio: this.opts.maskRatio, seed });
    }
    return randomMasking({ batch, numTokens: this.numPatches, maskRatio: this.opts.maskRatio, seed });
  }

  private checkInputs(x: tf.Tensor, masking: TokenMasking): void {
    this.backbone.checkInput(x);
    const b = x.shape[0];
    const l = this.numPatches;
    check(
      masking.mask.shape[0] === b && masking.mask.shape[1] === l,
      () => `MILAN: expected a masking of [${b}, ${l}] tokens, got a mask [${masking.mask.shape.join(', ')}]`,
    );
  }

  /** The encoded class token + visible tokens `[B, 1 + lenKeep, C]` (MAE's `forward_encoder`). */
  forwardEncoder(x: tf.Tensor, opts: MILANForwardOptions): tf.Tensor3D {
    this.checkInputs(x, opts.masking);
    return tf.tidy(() => {
      const e = vitEmbed(this.backbone, x, null, opts);
      const visible = gatherTokens(e.patches, opts.masking.idsKeep);
      return vitTrunk(this.backbone, tf.concat([e.prefix!, visible], 1), opts);
    });
  }

  /** The prompting decoder: predicted teacher features for every token `[B, 1 + L, teacherDim]`. */
  forwardDecoder(latent: tf.Tensor3D, masking: TokenMasking, opts: ForwardOptions = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, k1] = latent.shape;
      const l = this.numPatches;
      const d = this.opts.decoderDim;
      const y = this.decoderEmbed.forward(latent);
      const cls = y.slice([0, 0, 0], [b, 1, d]);
      const vis = y.slice([0, 1, 0], [b, k1 - 1, d]);
      const tokens = tf.concat([vis, tf.tile(this.maskToken.value, [b, l - (k1 - 1), 1])], 1);
      const full = tf.add(tf.concat([cls, gatherTokens(tokens, masking.idsRestore)], 1), this.decoderPosEmbed.value);
      const patches = full.slice([0, 1, 0], [b, l, d]);
      const fixed = tf.concat([full.slice([0, 0, 0], [b, 1, d]), gatherTokens(patches, masking.idsKeep)], 1);
      let q: tf.Tensor = gatherTokens(patches, masking.idsDump);
      for (const blk of this.decoderBlocks) q = blk.forward(q, { ...opts, fixed });
      const restored = gatherTokens(tf.concat([fixed.slice([0, 1, 0], [b, k1 - 1, d]), q], 1), masking.idsRestore);
      const out = tf.concat([fixed.slice([0, 0, 0], [b, 1, d]), restored], 1);
      return this.decoderPred.forward(this.decoderNorm.forward(out)) as tf.Tensor3D;
    });
  }

  /** Predicted teacher features `[B, 1 + L, teacherDim]`. */
  forward(x: tf.Tensor, opts: MILANForwardOptions): tf.Tensor3D {
    return tf.tidy(() => this.forwardDecoder(this.forwardEncoder(x, opts), opts.masking, opts));
  }

  /**
   * The MILAN loss against the teacher's features `[B, 1 + L, teacherDim]` ({@link milanLoss}). With a CLIP
   * `teacher`, `target` defaults to its features of `x` and `masking` to semantic-aware sampling from its
   * importance (end to end: `loss(x, { seed, training: true })`).
   */
  loss(x: tf.Tensor, opts: MILANLossOptions = {}): tf.Scalar {
    check(
      (opts.target && opts.masking) || this.teacher,
      () => 'MILAN.loss: pass { masking, target } or build the model with a CLIP teacher (milan(vit, { teacher }))',
    );
    const b = x.shape[0];
    this.backbone.checkInput(x);
    const t = opts.target ?? null;
    if (t)
      check(
        t.rank === 3 && t.shape[0] === b && t.shape[1] === this.numPatches + 1 && t.shape[2] === this.opts.teacherDim,
        () => `MILAN: expected teacher features [${b}, ${this.numPatches + 1}, ${this.opts.teacherDim}], got [${t.shape.join(', ')}]`,
      );
    return tf.tidy(() => {
      const out = t && opts.masking ? null : this.teacher!(x);
      // a generated masking is released with the tidy scope
      const masking = opts.masking ?? this.generateMasking(b, opts.seed, out!.importance);
      return milanLoss(this.forward(x, { ...opts, masking }), t ?? out!.features);
    });
  }
}

/**
 * Wrap a ViT (class token, `numClasses: 0`) for MILAN pretraining against a frozen teacher of width `teacherDim`,
 * or against a frozen CLIP image tower given as `teacher`.
 */
export function milan(backbone: VisionTransformer, opts: MILANOptions): MILAN {
  return new MILAN(backbone, opts);
}
