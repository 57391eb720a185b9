import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { interpolateNhwc } from '../../layers/interpolate.js';
import type { DenseClip } from './denseClip.js';
import { ClipResNetWithAttention } from './resnet.js';
import type { ClipTextContextEncoder } from './textContextEncoder.js';
import { DenseClipVisionTransformer } from './visionTransformer.js';

/** Integer entries of OpenAI's JIT archives and CLIP's temperature: never part of a DenseCLIP model. */
const CLIP_ONLY = new Set(['input_resolution', 'context_length', 'vocab_size', 'logit_scale']);

/** The text-tower keys of a whole CLIP checkpoint (top level). */
function isTextKey(k: string): boolean {
  return (
    k.startsWith('transformer.') ||
    k.startsWith('token_embedding.') ||
    k.startsWith('ln_final.') ||
    k === 'positional_embedding' ||
    k === 'text_projection'
  );
}

/**
 * A positional table `[1 + S*S, C]` with its spatial part bilinearly resized (align_corners=False) to `[1 + T*T, C]`,
 * as DenseCLIP's `init_weights` adapts CLIP's grid to `input_resolution / 32` (ResNet) or `/ patch` (ViT).
 */
export function resizePositionGrid(pos: tf.Tensor, target: number): tf.Tensor2D {
  const [n, c] = pos.shape as [number, number];
  const s = Math.round(Math.sqrt(n - 1));
  check(s * s === n - 1, () => `positional table with ${n} rows is not 1 + a square grid`);
  return tf.tidy(() => {
    if (s === target) return pos.clone() as tf.Tensor2D;
    const spatial = interpolateNhwc(tf.slice(pos, [1, 0], [s * s, c]).reshape([1, s, s, c]), [target, target], { mode: 'bilinear' });
    return tf.concat([tf.slice(pos, [0, 0], [1, c]), spatial.reshape([target * target, c])], 0) as tf.Tensor2D;
  });
}

/** What a conversion produced: the state dict to load, the tensors it created (dispose them), the keys it dropped. */
export interface ConvertedWeights {
  sd: Record<string, tf.Tensor>;
  created: tf.Tensor[];
  skipped: string[];
}

/**
 * OpenAI CLIP's image tower (`visual.*` of a whole checkpoint, or its keys without the prefix) for a DenseCLIP
 * backbone, as DenseCLIP's `init_weights`: the prefix stripped, the attention-pool (ResNet) or ViT positional
 * grid resized to the backbone's `inputResolution`.
 */
export function openAiClipVisualWeights(
  clip: Record<string, tf.Tensor>,
  backbone: ClipResNetWithAttention | DenseClipVisionTransformer,
): ConvertedWeights {
  const hasPrefix = Object.keys(clip).some((k) => k.startsWith('visual.'));
  const out: ConvertedWeights = { sd: {}, created: [], skipped: [] };
  const posKey = backbone instanceof ClipResNetWithAttention ? 'attnpool.positional_embedding' : 'positional_embedding';
  const grid = backbone instanceof ClipResNetWithAttention ? backbone.attnpool.spacialDim : backbone.spatialSize;
  for (const [k, v] of Object.entries(clip)) {
    if (hasPrefix && !k.startsWith('visual.')) {
      out.skipped.push(k);
      continue;
    }
    const nk = hasPrefix ? k.slice('visual.'.length) : k;
    if (CLIP_ONLY.has(nk)) {
      out.skipped.push(k);
    } else if (nk === posKey && v.shape[0] !== grid * grid + 1) {
      const r = resizePositionGrid(v, grid);
      out.created.push(r);
      out.sd[nk] = r;
    } else out.sd[nk] = v;
  }
  return out;
}

/**
 * OpenAI CLIP's text tower (the top-level keys of a whole checkpoint) for DenseCLIP's text encoder, as its
 * `init_weights`: `transformer.*`, `token_embedding`, `ln_final`, `text_projection`, and `positional_embedding`
 * truncated to the encoder's `contextLength` rows; every other key is skipped.
 */
export function openAiClipTextWeights(clip: Record<string, tf.Tensor>, encoder: ClipTextContextEncoder): ConvertedWeights {
  const out: ConvertedWeights = { sd: {}, created: [], skipped: [] };
  const n = encoder.cfg.contextLength;
  for (const [k, v] of Object.entries(clip)) {
    if (!isTextKey(k)) {
      out.skipped.push(k);
    } else if (k === 'positional_embedding' && (v.shape[0] as number) > n) {
      const t = tf.slice(v, [0, 0], [n, -1]);
      out.created.push(t);
      out.sd[k] = t;
    } else out.sd[k] = v;
  }
  return out;
}

/**
 * A whole OpenAI CLIP checkpoint for a {@link DenseClip} model: `visual.*` -> `backbone.*` (grids resized), the
 * text keys -> `text_encoder.*` (positions truncated). `contexts`, `gamma` and the context decoder are not in
 * CLIP: load the result with `strict: false`.
 */
export function openAiClipWeightsForDenseClip(clip: Record<string, tf.Tensor>, model: DenseClip): ConvertedWeights {
  const out: ConvertedWeights = { sd: {}, created: [], skipped: [] };
  const text = openAiClipTextWeights(clip, model.textEncoder);
  for (const [k, v] of Object.entries(text.sd)) out.sd[`text_encoder.${k}`] = v;
  out.created.push(...text.created);
  if (model.backbone) {
    const vis = openAiClipVisualWeights(Object.fromEntries(Object.entries(clip).filter(([k]) => k.startsWith('visual.'))), model.backbone);
    for (const [k, v] of Object.entries(vis.sd)) out.sd[`backbone.${k}`] = v;
    out.created.push(...vis.created);
  }
  for (const k of Object.keys(clip)) if (!isTextKey(k) && !(model.backbone && k.startsWith('visual.'))) out.skipped.push(k);
  return out;
}

/** Load a whole OpenAI CLIP checkpoint into a DenseCLIP model as its `init_weights` does (non-strict). */
export function loadOpenAiClipWeights(model: DenseClip, clip: Record<string, tf.Tensor>): { loaded: string[]; skipped: string[] } {
  const c = openAiClipWeightsForDenseClip(clip, model);
  try {
    const res = model.loadStateDict(c.sd, { strict: false });
    return { loaded: res.loaded, skipped: [...c.skipped, ...res.unexpected, ...res.mismatched] };
  } finally {
    tf.dispose(c.created);
  }
}
