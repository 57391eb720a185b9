import * as tf from '@tensorflow/tfjs';
import { maybeCheckpoint } from '../models/checkpoint.js';
import { check } from '../errors.js';
import { ForwardOptions } from '../layers/module.js';
import { roll2d, shiftedWindowMask, windowPartition } from '../layers/windows.js';
import { SwinBlock } from '../models/swin/swinBlock.js';
import { SwinTransformer } from '../models/swin/swinTransformer.js';

/** What the pretraining wrappers may change in a Swin forward pass. */
export interface SwinEncoderOptions extends ForwardOptions {
  /** Applied to the patch embedding `[B, h, w, C]` before the stages (mask tokens, mixing, position embeddings). */
  embedHook?: (tokens: tf.Tensor4D) => tf.Tensor;
  /**
   * Per-stage token groups `[h_i, w_i]` shared by the batch (one per stage): a token attends only to
   * tokens of its own group (MixMIM's attention mask). Values are group ids (e.g. 0/1).
   */
  groups?: tf.Tensor2D[];
}

/** Logit added between tokens of different groups: the softmax weight becomes exactly 0. */
const GROUP_MASK_VALUE = -1e30;

/**
 * `[nW, N, N]` additive attention mask that separates token groups inside each (shifted) window:
 * 0 within a group, -1e30 across groups (MixMIM, Liu et al. 2023, sec. 3.1 "attention mask").
 */
export function groupAttentionMask(groups: tf.Tensor2D, window: [number, number], shift: [number, number]): tf.Tensor3D {
  return tf.tidy(() => {
    const [h, w] = groups.shape;
    let g: tf.Tensor4D = groups.toFloat().reshape([1, h, w, 1]);
    if (shift[0] || shift[1]) g = roll2d(g, -shift[0], -shift[1]);
    const win = windowPartition(g, window[0], window[1]); // [nW, N, 1]
    const differs = tf.minimum(tf.abs(tf.sub(win, win.transpose([0, 2, 1]))), 1);
    return tf.mul(differs, GROUP_MASK_VALUE) as tf.Tensor3D;
  });
}

/**
 * Runs a timm-layout {@link SwinTransformer} trunk (patch embedding, stages, final norm) block by block
 * through the blocks' public submodules, so masked-image-modeling wrappers can hook in where the
 * reference code does: after the patch embedding (SimMIM's mask token, MixMIM's mixing) and inside every
 * window attention (MixMIM's per-image attention mask). It also accepts other input resolutions than the
 * model was built for (FastMIM's low and progressive resolutions): each stage's grid must then be a
 * multiple of its blocks' windows; shifted blocks shift by half the window when the grid is larger than
 * it, as timm does. Without hooks the output equals `model.forwardFeatures(x)`.
 */
export class SwinEncoder {
  private readonly shiftMasks = new Map<string, tf.Tensor3D | null>();
  constructor(readonly model: SwinTransformer) {}

  /** Patch size of the embedding. */
  get patchSize(): number {
    return this.model.patchEmbed.opts.patchSize;
  }

  /** Total stride of the last stage (32 for a 4-stage Swin with patch 4). */
  get stride(): number {
    return this.model.featureInfo[this.model.featureInfo.length - 1].reduction;
  }

  /** Width of the output features. */
  get numFeatures(): number {
    return this.model.numFeatures;
  }

  /** The per-stage token grids for an `H x W` input, validating every constraint with a clear error. */
  stageGrids(H: number, W: number): [number, number][] {
    const p = this.patchSize;
    check(
      H % this.stride === 0 && W % this.stride === 0,
      () =>
        `image size ${H}x${W} is not divisible by the encoder stride ${this.stride} (patchSize ${p} x 2^${this.model.layers.length - 1})`,
    );
    return this.model.layers.items.map((stage, i) => {
      const g: [number, number] = [H / (p * 2 ** i), W / (p * 2 ** i)];
      for (const b of stage.blocks.items) {
        check(
          g[0] % b.window[0] === 0 && g[1] % b.window[1] === 0,
          () => `stage ${i} grid ${g.join('x')} (image ${H}x${W}) is not a multiple of its window ${b.window.join('x')}`,
        );
      }
      return g;
    });
  }

  /** Window shift and shifted-window mask of a block at a grid (cached per resolution). */
  private blockGeometry(
    i: number,
    j: number,
    block: SwinBlock,
    grid: [number, number],
  ): { shift: [number, number]; mask: tf.Tensor3D | null } {
    const built = this.model.layers.items[i].opts.inputResolution;
    if (grid[0] === built[0] && grid[1] === built[1]) return { shift: block.shift, mask: block.attnMask };
    const shifted = (block.opts.shiftSize ?? 0) > 0;
    const shift: [number, number] = [
      shifted && grid[0] > block.window[0] ? Math.floor(block.window[0] / 2) : 0,
      shifted && grid[1] > block.window[1] ? Math.floor(block.window[1] / 2) : 0,
    ];
    const key = `${i}.${j}.${grid[0]}x${grid[1]}`;
    if (!this.shiftMasks.has(key)) {
      const m =
        shift[0] || shift[1] ? tf.keep(shiftedWindowMask(grid[0], grid[1], block.window[0], block.window[1], shift[0], shift[1])) : null;
      this.shiftMasks.set(key, m);
    }
    return { shift, mask: this.shiftMasks.get(key) ?? null };
  }

  /**
   * One Swin block at this geometry, with MixMIM's group mask added inside every window; recomputed in
   * the backward pass when its stage has gradient checkpointing on (the masks are inputs of the recompute).
   */
  private block(
    x: tf.Tensor4D,
    block: SwinBlock,
    shift: [number, number],
    shiftMask: tf.Tensor3D | null,
    groups: tf.Tensor2D | null,
    opts: ForwardOptions,
    checkpointed: boolean,
  ): tf.Tensor4D {
    return tf.tidy(() => {
      const extraMask = groups ? groupAttentionMask(groups, block.window, shift) : null;
      const consts = [shiftMask, extraMask].filter((t): t is tf.Tensor3D => t !== null);
      return maybeCheckpoint(
        checkpointed,
        opts,
        block,
        x,
        (u, c) => {
          const sm = shiftMask ? (c[0] as tf.Tensor3D) : null;
          const em = extraMask ? (c[shiftMask ? 1 : 0] as tf.Tensor3D) : null;
          return block.forward(u, { training: opts.training, shift, shiftMask: sm, extraMask: em });
        },
        consts,
      );
    });
  }

  /** The encoder features after the final norm, NHWC `[B, H/stride, W/stride, numFeatures]`. */
  forward(x: tf.Tensor, opts: SwinEncoderOptions = {}): tf.Tensor4D {
    return tf.tidy(() => this.forwardWithStages(x, opts).features);
  }

  /** {@link forward} plus the per-stage outputs. */
  forwardWithStages(x: tf.Tensor, opts: SwinEncoderOptions = {}): { features: tf.Tensor4D; stages: tf.Tensor4D[] } {
    const m = this.model;
    check(x.rank === 4, () => `expected an NHWC image batch [B, H, W, ${m.inChans}], got shape [${x.shape.join(', ')}]`);
    const [, H, W, c] = x.shape;
    check(c === m.inChans, () => `expected ${m.inChans} input channels (NHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`);
    const grids = this.stageGrids(H, W);
    if (opts.groups) {
      check(
        opts.groups.length === m.layers.length,
        () => `expected one group grid per stage (${m.layers.length}), got ${opts.groups!.length}`,
      );
      opts.groups.forEach((g, i) =>
        check(
          g.rank === 2 && g.shape[0] === grids[i][0] && g.shape[1] === grids[i][1],
          () => `stage ${i} group grid must be [${grids[i].join(', ')}], got [${g.shape.join(', ')}]`,
        ),
      );
    }
    return tf.tidy(() => {
      let y = m.patchEmbed.forward(x);
      if (opts.embedHook) {
        const hooked = opts.embedHook(y);
        check(
          hooked.shape.join(',') === y.shape.join(','),
          () => `embedHook must keep the embedding shape [${y.shape.join(', ')}], got [${hooked.shape.join(', ')}]`,
        );
        y = hooked as tf.Tensor4D;
      }
      const stages: tf.Tensor4D[] = [];
      m.layers.items.forEach((stage, i) => {
        if (stage.downsample) y = stage.downsample.forward(y);
        stage.blocks.items.forEach((b, j) => {
          const { shift, mask } = this.blockGeometry(i, j, b, grids[i]);
          y = this.block(y, b, shift, mask, opts.groups ? opts.groups[i] : null, opts, stage.gradCheckpointing);
        });
        stages.push(y);
      });
      return { features: m.norm.forward(y) as tf.Tensor4D, stages };
    });
  }

  /** Release the cached masks (not the model). */
  dispose(): void {
    for (const t of this.shiftMasks.values()) t?.dispose();
    this.shiftMasks.clear();
  }
}
