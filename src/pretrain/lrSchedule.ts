import { check } from '../errors.js';

/** Options of {@link cosineLr}. */
export interface CosineScheduleOptions {
  /** Peak learning rate (reached at the end of the warm-up). */
  baseLr: number;
  /** Total optimisation steps. */
  totalSteps: number;
  /** Linear warm-up steps from 0 (default 0). */
  warmupSteps?: number;
  /** Floor of the cosine (default 0). */
  minLr?: number;
}

/**
 * Learning rate at `step` (0-based) of a linear warm-up followed by a half-cycle cosine decay to
 * `minLr` (MAE's `adjust_learning_rate`, He et al. 2022, appendix A.1; SGDR, Loshchilov & Hutter
 * 2017): `baseLr * step / warmup` during warm-up, then
 * `minLr + (baseLr - minLr) * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))`.
 */
export function cosineLr(step: number, opts: CosineScheduleOptions): number {
  const warm = opts.warmupSteps ?? 0;
  const minLr = opts.minLr ?? 0;
  check(opts.totalSteps > 0 && warm >= 0 && warm <= opts.totalSteps, () => `cosine schedule needs 0 <= warmupSteps (${warm}) <= totalSteps (${opts.totalSteps}) and totalSteps > 0`);
  if (step < warm) return (opts.baseLr * step) / warm;
  const span = Math.max(1, opts.totalSteps - warm);
  const t = Math.min(1, (step - warm) / span);
  return minLr + (opts.baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Options of {@link layerwiseLrScales}. */
export interface LayerDecayOptions {
  /** Decay per layer (e.g. 0.65 for ViT-B fine-tuning in MAE, 0.9 for Swin in SimMIM). */
  decay: number;
  /** Layer id of a parameter name (0 = embeddings, increasing with depth, `maxLayerId` = head). */
  layerId: (name: string) => number;
  /** Layer id of the head (its scale is 1). */
  maxLayerId: number;
}

/**
 * Layer-wise learning-rate decay (BEiT, Bao et al. 2022, sec. 3; MAE's `param_groups_lrd`;
 * SimMIM's Swin variant): parameter `name` gets the scale `decay ^ (maxLayerId - layerId(name))`.
 */
export function layerwiseLrScales(names: string[], opts: LayerDecayOptions): Map<string, number> {
  check(opts.decay > 0 && opts.decay <= 1, () => `layer decay must be in (0, 1], got ${opts.decay}`);
  return new Map(
    names.map((n) => {
      const id = opts.layerId(n);
      check(Number.isInteger(id) && id >= 0 && id <= opts.maxLayerId, () => `layer id of '${n}' must be an integer in [0, ${opts.maxLayerId}], got ${id}`);
      return [n, opts.decay ** (opts.maxLayerId - id)];
    }),
  );
}

/** A parameter-name -> layer-depth map for layer-wise learning-rate decay. */
export interface LayerIdMap {
  /** Depth of the parameter `name` (0 = embeddings). */
  layerId: (name: string) => number;
  /** The largest depth (final norm and head). */
  maxLayerId: number;
}

/**
 * ViT layer ids (BEiT / MAE `get_layer_id_for_vit`): `cls_token`, `pos_embed`, `patch_embed.*` -> 0,
 * `blocks.i.*` -> i + 1, everything else (final norm, head) -> depth + 1. Strips an `encoder.` prefix.
 */
export function vitLayerId(depth: number): LayerIdMap {
  return {
    maxLayerId: depth + 1,
    layerId: (name) => {
      const n = name.replace(/^encoder\./, '');
      if (/^(cls_token|pos_embed|mask_token|reg_token|patch_embed\.)/.test(n)) return 0;
      const m = /^blocks\.(\d+)\./.exec(n);
      return m ? Number(m[1]) + 1 : depth + 1;
    },
  };
}

/**
 * Swin layer ids (SimMIM's `get_swin_layer`, in timm's layout where `layers.i.downsample` starts stage i):
 * patch embedding and mask token -> 0, `layers.i.blocks.j` -> sum(depths[:i]) + j + 1,
 * `layers.i.downsample` -> sum(depths[:i]), everything else -> sum(depths) + 1. Strips an `encoder.` prefix.
 */
export function swinLayerId(depths: number[]): LayerIdMap {
  const total = depths.reduce((a, b) => a + b, 0);
  const before = (i: number) => depths.slice(0, i).reduce((a, b) => a + b, 0);
  return {
    maxLayerId: total + 1,
    layerId: (name) => {
      const n = name.replace(/^encoder\./, '');
      if (/^(mask_token|absolute_pos_embed|patch_embed\.)/.test(n)) return 0;
      const blk = /^layers\.(\d+)\.blocks\.(\d+)\./.exec(n);
      if (blk) return before(Number(blk[1])) + Number(blk[2]) + 1;
      const ds = /^layers\.(\d+)\.downsample\./.exec(n);
      if (ds) return before(Number(ds[1]));
      return total + 1;
    },
  };
}
