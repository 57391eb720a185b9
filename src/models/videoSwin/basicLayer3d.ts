import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { PatchMerging } from '../../layers/patchMerging.js';
import { SwinBlock3D } from './swinBlock3d.js';
import { clampWindow, computeMask2d, computeMask3d, MaskValues, padEnd3d, Triple } from './windows3d.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link BasicLayer3D}. */
export interface BasicLayer3DOptions {
  dim: number;
  depth: number;
  numHeads: number;
  windowSize: Triple;
  mlpRatio?: number;
  qkvBias?: boolean;
  qkScale?: number | null;
  drop?: number;
  attnDrop?: number;
  /** Drop-path rate of each block. */
  dropPath: number[];
  /** Patch merging at the END of the stage (Video Swin's placement). */
  downsample: boolean;
  normEps?: number;
}

/**
 * Video Swin's `PatchMerging` on `[B, D, H, W, C]`: H and W zero-padded to even, then Swin's 2x2
 * merge (norm(4C), reduction to 2C) over every frame; D is unchanged.
 */
export function patchMerging3d(pm: PatchMerging, x: tf.Tensor): tf.Tensor5D {
  return tf.tidy(() => {
    const [b, d, h, w, c] = x.shape;
    const y = padEnd3d(x, [0, h % 2, w % 2]);
    const [hp, wp] = [h + (h % 2), w + (w % 2)];
    const m = pm.forward(y.reshape([b * d, hp, wp, c]));
    return m.reshape([b, d, hp / 2, wp / 2, m.shape[3]]) as tf.Tensor5D;
  });
}

/**
 * One Video Swin stage (the reference's `BasicLayer`): `depth` blocks alternating regular and shifted
 * 3-D windows, with the window and shift clamped to the stage size and one shifted-window mask per
 * stage, then (except in the last stage) patch merging. Keys `blocks.<j>.*`, `downsample.*`.
 */
export class BasicLayer3D extends Module {
  readonly blocks: ModuleList<SwinBlock3D>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  readonly downsample: PatchMerging | null;
  readonly shiftSize: Triple;
  private readonly masks = new Map<string, MaskValues>();
  constructor(readonly opts: BasicLayer3DOptions) {
    super();
    this.config = { ...opts };
    const ws = opts.windowSize;
    this.shiftSize = ws.map((v) => Math.floor(v / 2)) as Triple;
    this.blocks = this.addModule('blocks', new ModuleList<SwinBlock3D>());
    for (let j = 0; j < opts.depth; j++) {
      this.blocks.push(
        new SwinBlock3D({
          dim: opts.dim,
          numHeads: opts.numHeads,
          windowSize: ws,
          shiftSize: j % 2 === 0 ? [0, 0, 0] : this.shiftSize,
          mlpRatio: opts.mlpRatio,
          qkvBias: opts.qkvBias,
          qkScale: opts.qkScale,
          drop: opts.drop,
          attnDrop: opts.attnDrop,
          dropPath: opts.dropPath[j] ?? 0,
          normEps: opts.normEps,
        }),
      );
    }
    this.downsample = opts.downsample ? this.addModule('downsample', new PatchMerging({ dim: opts.dim, normEps: opts.normEps })) : null;
  }

  /**
   * The stage mask of a geometry as a tensor of the current scope: its values are computed once per
   * geometry and kept in JavaScript (so a forward at a new clip size leaves no tensor behind).
   */
  private cachedMask(key: string, make: () => MaskValues): tf.Tensor3D {
    let m = this.masks.get(key);
    if (!m) {
      m = make();
      this.masks.set(key, m);
    }
    return tf.tensor3d(m.values, m.shape);
  }

  /** Video path: `x` `[B, D, H, W, C]` -> the stage output (before merging) and the merged map. */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): { out: tf.Tensor5D; down: tf.Tensor5D } {
    const [, d, h, w] = x.shape;
    const { window, shift } = clampWindow([d, h, w], this.opts.windowSize, this.shiftSize);
    const padded = [d, h, w].map((s, i) => Math.ceil(s / window[i]) * window[i]) as Triple;
    return tf.tidy(() => {
      const key = `${padded.join('x')}_${window.join('x')}_${shift.join('x')}`;
      const mask = shift.some((s) => s > 0) ? this.cachedMask(key, () => computeMask3d(padded, window, shift)) : null;
      let y = x as tf.Tensor5D;
      this.blocks.items.forEach((blk, j) => {
        const o = { training: opts.training, window, shift: (j % 2 === 0 ? [0, 0, 0] : shift) as typeof shift };
        // the mask lives only as long as this call: the recompute gets it as an input
        y = maybeCheckpoint(
          this.gradCheckpointing,
          opts,
          blk,
          y,
          (u, [m]) => blk.forward(u, { ...o, mask: m ?? null }),
          mask ? [mask] : [],
        );
      });
      const down = this.downsample ? patchMerging3d(this.downsample, y) : y.clone();
      return { out: y, down };
    });
  }

  /**
   * BEVT's image path: `x` `[B, H, W, C]` with the square window `windowSize[1]`, no clamping or padding
   * (H and W must be multiples of it), the stage's 2-D mask in every block; merging without padding.
   */
  forwardImage(x: tf.Tensor, opts: ForwardOptions = {}): { out: tf.Tensor4D; down: tf.Tensor4D } {
    const [, h, w] = x.shape;
    const ws = this.opts.windowSize[1];
    const shift = this.shiftSize[1];
    check(
      h % ws === 0 && w % ws === 0,
      () => `the image stream needs a token grid divisible by the window ${ws} in every stage, got ${h}x${w}`,
    );
    return tf.tidy(() => {
      const mask = this.cachedMask(`img_${h}x${w}_${ws}_${shift}`, () => computeMask2d(h, w, ws, shift));
      let y = x as tf.Tensor4D;
      for (const blk of this.blocks.items) {
        y = maybeCheckpoint(
          this.gradCheckpointing,
          opts,
          blk,
          y,
          (u, [m]) => blk.forwardImage(u, { training: opts.training, window: ws, mask: m }),
          [mask],
        );
      }
      if (this.downsample)
        check(h % 2 === 0 && w % 2 === 0, () => `the image stream merges patches without padding: the token grid ${h}x${w} must be even`);
      const down = this.downsample ? this.downsample.forward(y) : (y.clone() as tf.Tensor4D);
      return { out: y, down };
    });
  }
}
