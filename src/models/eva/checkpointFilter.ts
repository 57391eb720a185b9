import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { resampleAbsPosEmbed, resamplePatchEmbed } from '../../layers/posEmbed.js';

/** What {@link evaCheckpointFilter} needs to know of the model it adapts a checkpoint to. */
export interface EvaFilterTarget {
  /** Patch kernel size `[kh, kw]`. */
  patchSize: [number, number];
  /** Patch grid of the model. */
  gridSize: [number, number];
  /** Rows of the model's `pos_embed` (null: the model has none). */
  posEmbedLength: number | null;
  /** Leading rows of `pos_embed` that are not on the grid (0 with `noEmbedClass`). */
  posEmbedPrefix: number;
}

/**
 * timm's EVA `checkpoint_filter_fn`: OpenCLIP towers lose their `visual.trunk.` / `visual.` prefix (other
 * keys are dropped), the original BAAI names are renamed (`mlp.ffn_ln` -> `mlp.norm`, `attn.inner_attn_ln`
 * -> `attn.norm`, `mlp.w12` -> `mlp.fc1`, `mlp.w1/w2/w3` -> `mlp.fc1_g/fc1_x/fc2`, and with separate q/k/v
 * `q_bias`/`v_bias` -> `q_proj.bias`/`v_proj.bias`), RoPE buffers are dropped (the table is rebuilt for
 * this model's grid), masked-image-modelling checkpoints lose `mask_token` / `lm_head.*` and their `norm`
 * becomes `fc_norm`, a patch kernel of another size is resampled (FlexiViT PI-resize) and a `pos_embed`
 * of another grid is resampled bicubically with antialiasing (prefix rows kept, source grid square).
 */
export function evaCheckpointFilter(
  sd: Record<string, tf.Tensor>,
  model: EvaFilterTarget,
): { sd: Record<string, tf.Tensor>; created: tf.Tensor[] } {
  const created: tf.Tensor[] = [];
  const out: Record<string, tf.Tensor> = {};
  const prefix = 'visual.trunk.pos_embed' in sd ? 'visual.trunk.' : 'visual.pos_embed' in sd ? 'visual.' : '';
  const mim = `${prefix}mask_token` in sd;
  const noQkv = `${prefix}blocks.0.attn.q_proj.weight` in sd;
  for (const [key, value] of Object.entries(sd)) {
    let k = key;
    let v = value;
    if (prefix) {
      if (!k.startsWith(prefix)) continue;
      k = k.slice(prefix.length);
    }
    if (k.includes('rope') && k !== 'rope.freqs') continue;
    if (k.includes('patch_embed.proj.weight')) {
      const [ph, pw] = model.patchSize;
      if (v.rank === 4 && (v.shape[2] !== ph || v.shape[3] !== pw)) {
        v = resamplePatchEmbed(v, [ph, pw], { interpolation: 'bicubic', antialias: true });
        created.push(v);
      }
    } else if (k === 'pos_embed' && model.posEmbedLength !== null && v.rank === 3 && v.shape[1] !== model.posEmbedLength) {
      const n = (v.shape[1] as number) - model.posEmbedPrefix;
      const s = Math.floor(Math.sqrt(n));
      check(
        s * s === n,
        () =>
          `checkpoint pos_embed has ${n} grid tokens (after ${model.posEmbedPrefix} prefix tokens), not a square grid; ` +
          'as timm, the source grid is taken to be square: resample it first with ' +
          `resampleAbsPosEmbed(posEmbed, [${model.gridSize.join(', ')}], { oldSize: [h, w] })`,
      );
      v = resampleAbsPosEmbed(v, model.gridSize, { numPrefixTokens: model.posEmbedPrefix, interpolation: 'bicubic', antialias: true });
      created.push(v);
    }
    k = k
      .replace('mlp.ffn_ln', 'mlp.norm')
      .replace('attn.inner_attn_ln', 'attn.norm')
      .replace('mlp.w12', 'mlp.fc1')
      .replace('mlp.w1', 'mlp.fc1_g')
      .replace('mlp.w2', 'mlp.fc1_x')
      .replace('mlp.w3', 'mlp.fc2');
    if (noQkv) k = k.replace('q_bias', 'q_proj.bias').replace('v_bias', 'v_proj.bias');
    if (mim && ['mask_token', 'lm_head.weight', 'lm_head.bias', 'norm.weight', 'norm.bias'].includes(k)) {
      if (k === 'norm.weight' || k === 'norm.bias') k = k.replace('norm', 'fc_norm');
      else continue;
    }
    out[k] = v;
  }
  return { sd: out, created };
}
