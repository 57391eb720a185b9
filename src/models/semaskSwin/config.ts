import type { BackboneCommonConfig } from '../backbone.js';

/**
 * Configuration of {@link semaskSwin}: the official SeMask-FPN backbone's constructor arguments
 * (`SeMaskSwinTransformer`, `SeMask-FPN/mmseg/models/backbones/semask_swin_transformer.py`) in
 * camelCase, with its defaults. There is no classifier.
 */
export interface SemaskSwinConfig extends Omit<BackboneCommonConfig, 'numClasses' | 'globalPool'> {
  /** Grid of the absolute position embedding (`imgSize / patchSize`); only used with `ape`. Default 224. */
  pretrainImgSize?: number | [number, number];
  patchSize?: number;
  /** Classes of the semantic prior maps (default 150, ADE20K). */
  numCls?: number;
  /** Window of the windowed semantic layers (default 7; the published models use `windowSize`). */
  semWindowSize?: number;
  /** Semantic-attention blocks chained in each stage's semantic layer (default `[1, 1, 1, 1]`). */
  numSemBlocks?: number[];
  /** Width of the first stage; stage i has `embedDim * 2^i` channels. Default 96. */
  embedDim?: number;
  depths?: number[];
  numHeads?: number[];
  /** Swin window size (default 7), never clamped to the map. */
  windowSize?: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  /** Attention scale instead of `headDim ** -0.5` (null = default). */
  qkScale?: number | null;
  /** Dropout after the patch embedding, in the MLPs and after the attention projection. */
  dropRate?: number;
  attnDropRate?: number;
  /** Stochastic depth rate (default 0.2; the published SeMask-FPN models trained with 0.3). */
  dropPathRate?: number;
  /** Absolute position embedding, resized bicubically to the input grid. Default false. */
  ape?: boolean;
  /** LayerNorm after the patch embedding (default true). */
  patchNorm?: boolean;
  /** Stages returned (and given a `norm{i}`), default `[0, 1, 2, 3]`. */
  outIndices?: number[];
  /**
   * Stages whose semantic layer is the global SeMaskBlock (attention over the whole map); the others
   * are windowed (SWSeMaskBlock). Default = the official FPN rule: every stage >= 2 when `embedDim` is
   * 96 or 192 and `numCls > 19`, else none.
   */
  semGlobalStages?: number[];
}
