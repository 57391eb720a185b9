import * as tf from '@tensorflow/tfjs';
import { ForwardOptions, Module, ModuleList } from '../../layers/module.js';
import { PatchMerging } from '../../layers/patchMerging.js';
import { SemaskSwinBlock, SemaskSwinBlockOptions } from './semaskSwinBlock.js';
import { SemanticLayer } from './semanticAttention.js';
import { maybeCheckpoint } from '../checkpoint.js';

/** Options of {@link SemaskStage}. */
export interface SemaskStageOptions extends Omit<SemaskSwinBlockOptions, 'shiftSize' | 'dropPath'> {
  depth: number;
  /** Drop-path rate of each block. */
  dropPath: number[];
  numCls: number;
  semWindowSize: number;
  /** Semantic-attention blocks of the semantic layer (0 = no semantic layer). */
  numSemBlocks: number;
  /** Global semantic layer (SeMaskBlock) instead of the windowed one. */
  semGlobal: boolean;
  /** Patch merging at the end of the stage (every stage but the last). */
  downsample: boolean;
}

/**
 * One SeMask stage (the official `BasicLayer`): Swin blocks alternating plain and shifted windows, the
 * semantic layer, and patch merging at the END of the stage (as in the original Swin code). Keys
 * `blocks.<j>.*`, `semantic_layer.*`, `downsample.{norm, reduction}`.
 */
export class SemaskStage extends Module {
  readonly blocks: ModuleList<SemaskSwinBlock>;
  /** Recompute each block in the backward pass (set by the model's `setGradCheckpointing`). */
  gradCheckpointing = false;
  readonly semanticLayer: SemanticLayer | null;
  readonly downsample: PatchMerging | null;
  constructor(readonly opts: SemaskStageOptions) {
    super();
    this.config = { ...opts };
    const { depth, dropPath, numCls, semWindowSize, numSemBlocks, semGlobal, downsample, ...blockOpts } = opts;
    this.blocks = this.addModule('blocks', new ModuleList<SemaskSwinBlock>());
    for (let j = 0; j < depth; j++) {
      const shiftSize = j % 2 === 0 ? 0 : Math.floor(opts.windowSize / 2);
      this.blocks.push(new SemaskSwinBlock({ ...blockOpts, shiftSize, dropPath: dropPath[j] ?? 0 }));
    }
    this.semanticLayer =
      numSemBlocks > 0
        ? this.addModule(
            'semantic_layer',
            new SemanticLayer({ dim: opts.dim, numCls, windowSize: semWindowSize, numSemBlocks, global: semGlobal }),
          )
        : null;
    this.downsample = downsample
      ? this.addModule('downsample', new PatchMerging({ dim: opts.dim, outDim: 2 * opts.dim, normPosition: 'pre', normEps: 1e-5 }))
      : null;
  }

  /** Blocks and semantic layer: the stage output `x_out` (NHWC) and its semantic prior logits (or null). */
  forward(x: tf.Tensor, opts: ForwardOptions = {}): { x: tf.Tensor4D; seg: tf.Tensor4D | null } {
    const out = tf.tidy(() => {
      let t = x as tf.Tensor4D;
      for (const b of this.blocks.items) t = maybeCheckpoint(this.gradCheckpointing, opts, b, t, (u) => b.forward(u, opts));
      if (!this.semanticLayer) return [t === x ? (t.clone() as tf.Tensor4D) : t];
      const r = this.semanticLayer.forward(t, opts);
      return [r.x, r.seg];
    });
    return { x: out[0] as tf.Tensor4D, seg: (out[1] as tf.Tensor4D | undefined) ?? null };
  }

  /** Patch merging of a stage output: odd sizes zero-padded at the bottom/right, next grid `ceil(H/2) x ceil(W/2)`. */
  merge(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const xp =
        h % 2 || w % 2
          ? tf.pad(x, [
              [0, 0],
              [0, h % 2],
              [0, w % 2],
              [0, 0],
            ])
          : x;
      return this.downsample!.forward(xp);
    });
  }
}
