import * as tf from '@tensorflow/tfjs';
import { maybeCheckpoint } from '../models/checkpoint.js';
import { check } from '../errors.js';
import { dropout } from '../layers/dropPath.js';
import { ForwardOptions } from '../layers/module.js';
import { resampleAbsPosEmbed } from '../layers/posEmbed.js';
import { VisionTransformer } from '../models/vit/visionTransformer.js';
import { MaskedEncoder } from './maskedEncoder.js';

/** A ViT's embedded input split into prefix tokens and patch tokens, each with its position embedding added. */
export interface VitEmbedding {
  /** `[B, P, C]` class / register tokens (null when the model has none). */
  prefix: tf.Tensor3D | null;
  /** `[B, N, C]` patch tokens, row-major over the grid. */
  patches: tf.Tensor3D;
  grid: [number, number];
}

/**
 * timm's `VisionTransformer._pos_embed` taken apart (ViT sec. 3.1 eq. 1), so MIM wrappers can edit the
 * patch embedding before the position embedding (SimMIM's mask token) or drop tokens (MAE / MILAN).
 * `edit` receives the patch embedding `[B, gh, gw, C]`. Other grids than the model's resample the
 * position embedding as the model does.
 */
export function vitEmbed(
  model: VisionTransformer,
  x: tf.Tensor,
  edit: ((t: tf.Tensor4D) => tf.Tensor) | null,
  opts: ForwardOptions = {},
): VitEmbedding {
  const grid: [number, number] = [0, 0];
  const out = tf.tidy(() => {
    let p: tf.Tensor4D = model.patchEmbed.forward(x);
    if (edit) {
      const e = edit(p);
      check(
        e.shape.join(',') === p.shape.join(','),
        () => `the patch-embedding edit must keep the shape [${p.shape.join(', ')}], got [${e.shape.join(', ')}]`,
      );
      p = e as tf.Tensor4D;
    }
    const [b, gh, gw, c] = p.shape;
    grid[0] = gh;
    grid[1] = gw;
    let patches: tf.Tensor = p.reshape([b, gh * gw, c]);
    const prefixParams = [model.clsToken, model.regToken].filter((t) => t !== null).map((t) => t!.value as tf.Tensor);
    let prefix: tf.Tensor | null = prefixParams.length ? tf.concat(prefixParams, 1) : null; // [1, P, C]
    const np = model.numPrefixTokens;
    if (model.posEmbed) {
      let pos: tf.Tensor = model.posEmbed.value;
      const withPrefix = !model.noEmbedClass;
      if (gh !== model.gridSize[0] || gw !== model.gridSize[1]) {
        pos = resampleAbsPosEmbed(pos, [gh, gw], { oldSize: model.gridSize, numPrefixTokens: withPrefix ? np : 0 });
      }
      if (withPrefix && np > 0) {
        prefix = tf.add(prefix!, pos.slice([0, 0, 0], [1, np, c]));
        pos = pos.slice([0, np, 0], [1, gh * gw, c]);
      }
      patches = tf.add(patches, pos);
    }
    const drop = (t: tf.Tensor) => dropout(t, (model.config.posDropRate as number | undefined) ?? 0, opts.training ?? false);
    const res: tf.Tensor[] = [drop(patches)];
    if (prefix) res.push(drop(tf.tile(prefix, [b, 1, 1])));
    return res;
  });
  return { patches: out[0] as tf.Tensor3D, prefix: (out[1] as tf.Tensor3D | undefined) ?? null, grid };
}

/** `norm_pre`, the blocks and the final norm of a ViT on an embedded sequence `[B, L, C]` (timm's `forward_features` after `_pos_embed`). */
export function vitTrunk(model: VisionTransformer, y: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor3D {
  return tf.tidy(() => {
    let t = model.normPre ? model.normPre.forward(y) : y;
    // the model's gradient checkpointing holds here too: each block recomputed in the backward pass
    for (const blk of model.blocks.items) t = maybeCheckpoint(model.isGradCheckpointing(), opts, blk, t, (u) => blk.forward(u, opts));
    return (model.norm ? model.norm.forward(t) : t.clone()) as tf.Tensor3D;
  });
}

/**
 * A {@link MaskedEncoder} over a ViT (SimMIM's `VisionTransformerForSimMIM`): the patch embedding is
 * edited, prefix tokens and position embeddings added, the blocks and final norm run, and the prefix
 * tokens dropped: NHWC `[B, H/p, W/p, C]` at stride = patch size. Any input size divisible by the patch
 * size is accepted (the position embedding is resampled).
 */
export function vitMaskedEncoder(model: VisionTransformer): MaskedEncoder {
  return {
    module: model,
    patchSize: model.patchSize,
    stride: model.patchSize,
    embedDim: model.embedDim,
    numFeatures: model.numFeatures,
    inChans: model.inChans,
    checkInput(x: tf.Tensor) {
      check(x.rank === 4, () => `expected an NHWC image batch [B, H, W, ${model.inChans}], got shape [${x.shape.join(', ')}]`);
      const [, h, w, c] = x.shape as number[];
      check(
        c === model.inChans,
        () => `expected ${model.inChans} input channels (NHWC, last axis), got ${c} in shape [${x.shape.join(', ')}]`,
      );
      check(
        h % model.patchSize === 0 && w % model.patchSize === 0,
        () => `image size ${h}x${w} is not divisible by the patch size ${model.patchSize}`,
      );
    },
    encode(x: tf.Tensor, edit, opts: ForwardOptions = {}) {
      this.checkInput(x);
      return tf.tidy(() => {
        const e = vitEmbed(model, x, edit, opts);
        const seq = e.prefix ? tf.concat([e.prefix, e.patches], 1) : e.patches;
        const out = vitTrunk(model, seq, opts);
        const [b, , c] = out.shape;
        const np = e.prefix ? e.prefix.shape[1] : 0;
        return out.slice([0, np, 0], [b, e.grid[0] * e.grid[1], c]).reshape([b, e.grid[0], e.grid[1], c]) as tf.Tensor4D;
      });
    },
    dispose() {},
  };
}
