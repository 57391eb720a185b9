import { check } from '../../errors.js';
import type { Triple } from './windows3d.js';

/**
 * `SwinTransformer3D` constructor arguments (Video Swin Transformer, Liu et al. 2022; the BEVT
 * fine-tuning backbone) in camelCase.
 */
export interface VideoSwinConfig {
  /** `[pt, ph, pw]` patch (Conv3d kernel and stride). Default `[2, 4, 4]`. */
  patchSize?: Triple;
  /** Input channels. Default 3. */
  inChans?: number;
  /** Width of the first stage (doubles per stage). Default 96. */
  embedDim?: number;
  /** Blocks per stage. Default `[2, 2, 6, 2]`. */
  depths?: number[];
  /** Attention heads per stage. Default `[3, 6, 12, 24]`. */
  numHeads?: number[];
  /** `[wd, wh, ww]` 3-D window. Default `[8, 7, 7]`. */
  windowSize?: Triple;
  /** MLP hidden width / width. Default 4. */
  mlpRatio?: number;
  /** Bias of the qkv projection. Default true. */
  qkvBias?: boolean;
  /** Overrides the `head_dim ** -0.5` attention scale. Default null. */
  qkScale?: number | null;
  /** Dropout after the MLP and the attention projection. Default 0. */
  dropRate?: number;
  attnDropRate?: number;
  /** Stochastic depth, linearly increasing over all blocks. Default 0.2. */
  dropPathRate?: number;
  /** LayerNorm after the patch embedding. Default false (the released configs set true). */
  patchNorm?: boolean;
  /** Window of a 3-D checkpoint to adapt from (its bias tables are resized trilinearly when loaded). */
  pretrainedWindowSize?: Triple | null;
  /** Checkpoint path of the reference (accepted and ignored: load weights with `loadTimmWeights`). */
  pretrained?: string | null;
  /** Whether the reference inflates a 2-D checkpoint (accepted and ignored: `loadTimmWeights` detects it). */
  pretrained2d?: boolean;
  /** `forward` returns the stage maps of `outIndices` (before their patch merging, no norm). */
  featuresOnly?: boolean;
  /** Stages returned by `featuresOnly` (negative count from the end). Default all. */
  outIndices?: number[];
  /** Classes (0 only: the classifier is a separate head, see `videoClsHead`). */
  numClasses?: number;
  /** LayerNorm epsilon everywhere. Default 1e-5. */
  normEps?: number;
}

/** The config with every default applied. */
export type ResolvedVideoSwinConfig = Required<Omit<VideoSwinConfig, 'pretrained' | 'pretrainedWindowSize' | 'outIndices'>> & {
  pretrained: string | null;
  pretrainedWindowSize: Triple | null;
  outIndices: number[];
};

function triple(name: string, v: unknown): Triple {
  const t = typeof v === 'number' ? [v, v, v] : (v as number[]);
  check(
    Array.isArray(t) && t.length === 3 && t.every((a) => Number.isInteger(a) && a > 0),
    () => `${name} must be three positive integers [t, h, w], got ${JSON.stringify(v)}`,
  );
  return [t[0], t[1], t[2]];
}

/** Apply the reference's defaults and check the config. */
export function resolveVideoSwinConfig(cfg: VideoSwinConfig = {}): ResolvedVideoSwinConfig {
  const depths = cfg.depths ?? [2, 2, 6, 2];
  const numHeads = cfg.numHeads ?? [3, 6, 12, 24];
  check(
    depths.length > 0 && depths.every((d) => Number.isInteger(d) && d > 0),
    () => `depths must be positive integers, got ${JSON.stringify(depths)}`,
  );
  check(numHeads.length === depths.length, () => `numHeads has ${numHeads.length} entries, expected one per stage (${depths.length})`);
  const embedDim = cfg.embedDim ?? 96;
  numHeads.forEach((h, i) =>
    check(
      Number.isInteger(h) && h > 0 && (embedDim * 2 ** i) % h === 0,
      () => `numHeads[${i}] = ${h} does not divide the stage width ${embedDim * 2 ** i}`,
    ),
  );
  const numClasses = cfg.numClasses ?? 0;
  check(numClasses === 0, () => `numClasses ${numClasses}: the video backbone has no classifier; put videoClsHead after it`);
  const n = depths.length;
  const outIndices = (cfg.outIndices ?? depths.map((_, i) => i)).map((i) => {
    const j = i < 0 ? n + i : i;
    check(Number.isInteger(i) && j >= 0 && j < n, () => `outIndices entry ${i} is out of range for ${n} stages`);
    return j;
  });
  return {
    patchSize: triple('patchSize', cfg.patchSize ?? [2, 4, 4]),
    inChans: cfg.inChans ?? 3,
    embedDim,
    depths,
    numHeads,
    windowSize: triple('windowSize', cfg.windowSize ?? [8, 7, 7]),
    mlpRatio: cfg.mlpRatio ?? 4,
    qkvBias: cfg.qkvBias ?? true,
    qkScale: cfg.qkScale ?? null,
    dropRate: cfg.dropRate ?? 0,
    attnDropRate: cfg.attnDropRate ?? 0,
    dropPathRate: cfg.dropPathRate ?? 0.2,
    patchNorm: cfg.patchNorm ?? false,
    pretrainedWindowSize: cfg.pretrainedWindowSize ? triple('pretrainedWindowSize', cfg.pretrainedWindowSize) : null,
    pretrained: cfg.pretrained ?? null,
    pretrained2d: cfg.pretrained2d ?? true,
    featuresOnly: cfg.featuresOnly ?? false,
    outIndices,
    numClasses: 0,
    normEps: cfg.normEps ?? 1e-5,
  };
}
