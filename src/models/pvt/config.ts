import type { BackboneCommonConfig } from '../backbone.js';

/**
 * Configuration of {@link pvt}: the official PVT v1 classifier's constructor arguments
 * (`classification/pvt.py` `PyramidVisionTransformer`) in camelCase, with the class defaults.
 */
export interface PvtConfig extends BackboneCommonConfig {
  /**
   * Image size the position embeddings are stored for (default 224). Any input size runs: the tables
   * are resized bilinearly at run time, as the reference does.
   */
  imgSize?: number | [number, number];
  /** Patch size of the first stage's embedding (class default 16; every published model uses 4). */
  patchSize?: number;
  /** Width of each stage (default `[64, 128, 256, 512]`). */
  embedDims?: number[];
  /** Attention heads of each stage (default `[1, 2, 4, 8]`). */
  numHeads?: number[];
  /** MLP expansion of each stage (default `[4, 4, 4, 4]`). */
  mlpRatios?: number[];
  /** Bias of the `q` and `kv` projections (default false; true in every published model). */
  qkvBias?: boolean;
  /** Attention scale instead of `headDim ** -0.5` (null = default). */
  qkScale?: number | null;
  /** Blocks of each stage (default `[3, 4, 6, 3]`). */
  depths?: number[];
  /** Spatial-reduction ratio of each stage's keys and values (default `[8, 4, 2, 1]`); the last must be 1. */
  srRatios?: number[];
  /** Number of stages (4: the final norm and the class token have the width of the fourth stage). */
  numStages?: number;
  /** Dropout after the position embeddings, in the MLPs and after the attention projection. */
  dropRate?: number;
  attnDropRate?: number;
  dropPathRate?: number;
  /**
   * Epsilon of the blocks' `norm1` / `norm2` and of the final `norm` (the reference's `norm_layer`):
   * default 1e-5 (`nn.LayerNorm`), 1e-6 in every published model. Patch-embedding and
   * spatial-reduction norms always use 1e-5.
   */
  normEps?: number;
}
