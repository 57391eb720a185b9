import type { BackboneCommonConfig } from '../backbone.js';

/** Configuration of {@link cswin}: the official `CSWinTransformer` constructor's arguments in camelCase. */
export interface CSWinConfig extends BackboneCommonConfig {
  /** Input image size (square side or `[H, W]`). Default 224. */
  imgSize?: number | [number, number];
  /** Accepted for compatibility and unused: the stem is always a 7x7 stride-4 conv (as in the official code). */
  patchSize?: number;
  /** Width of stage 1, doubled per stage (default 96). */
  embedDim?: number;
  /** Blocks per stage, four stages (default `[2, 2, 6, 2]`). */
  depth?: number[];
  /** Stripe width per stage; the last entry serves stage 4 (default `[3, 5, 7]`). */
  splitSize?: number[];
  /** Heads per stage, or one count for all (default 12). */
  numHeads?: number | number[];
  mlpRatio?: number;
  qkvBias?: boolean;
  /** Override of the `head_dim ** -0.5` attention scale. */
  qkScale?: number | null;
  /** Dropout in the MLPs (the official `drop_rate`). */
  dropRate?: number;
  attnDropRate?: number;
  /** Gradient checkpointing in the official code; accepted and ignored. */
  useChk?: boolean;
}

/** The defaults of {@link CSWinConfig} (the official `CSWinTransformer` defaults); `outIndices` defaults to every stage. */
export const CSWIN_DEFAULTS: Required<Omit<CSWinConfig, 'outIndices'>> = {
  imgSize: 224,
  patchSize: 4,
  embedDim: 96,
  depth: [2, 2, 6, 2],
  splitSize: [3, 5, 7],
  numHeads: 12,
  mlpRatio: 4,
  qkvBias: true,
  qkScale: null,
  dropRate: 0,
  attnDropRate: 0,
  useChk: false,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  globalPool: 'avg',
  dropPathRate: 0,
};
