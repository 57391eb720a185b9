import type { ClipActivation } from '../../layers/residualAttentionBlock.js';

/** Pooling of {@link ClipTextConfig}: which position of `ln_final(x)` becomes the text feature. */
export type ClipTextPool = 'argmax' | 'first' | 'last' | 'eos' | 'none';

/** Configuration of the CLIP text tower (open_clip's `TextTransformer` arguments, camelCase). */
export interface ClipTextConfig {
  /** Maximum number of token ids (positional-embedding rows, +1 with `embedCls`). Default 77. */
  contextLength?: number;
  /** Default 49408 (the CLIP BPE vocabulary). */
  vocabSize?: number;
  /** Default 512. */
  width?: number;
  /** Default 8. */
  heads?: number;
  /** Default 12. */
  layers?: number;
  /** Default 4. */
  mlpRatio?: number;
  /** LayerScale init value (null = no layer scale). */
  lsInitValue?: number | null;
  /** Projection width; 0 / null = no projection. Default 512. */
  outputDim?: number | null;
  /** Append a learned CLS embedding after the ids and pool it (CoCa). Default false. */
  embedCls?: boolean;
  /** Bidirectional attention instead of the causal mask. Default false. */
  noCausalMask?: boolean;
  /** Block padding keys (`id == padId`) in bidirectional mode. Default false. */
  usePadMask?: boolean;
  /** With `embedCls`: mark the CLS key valid at its own (last) position instead of the legacy first slot. */
  correctClsMask?: boolean;
  /** Default 0. */
  padId?: number;
  /** End-of-sequence id of `poolType: 'eos'`. Default 2. */
  eosId?: number;
  /** Default 'argmax' (the EOT token, the largest id). */
  poolType?: ClipTextPool;
  /** 'linear' (default) or 'none'. */
  projType?: 'linear' | 'none';
  /** Projection as an `nn.Linear` with bias (`text_projection.weight` / `.bias`) instead of a plain matrix. */
  projBias?: boolean;
  /** Default 'gelu' (OpenAI CLIP weights need 'quick_gelu'). */
  actLayer?: ClipActivation;
  /** open_clip's flag for returning the tokens too; `forwardTokens` always returns them. */
  outputTokens?: boolean;
}

/** Configuration of the CLIP image tower (open_clip's `VisionTransformer` arguments, camelCase). */
export interface ClipVisionConfig {
  /** Default 224. */
  imageSize?: number | [number, number];
  /** Default 16. */
  patchSize?: number;
  /** Default 768. */
  width?: number;
  /** Default 12. */
  layers?: number;
  /** Default 12. */
  heads?: number;
  /** Default 4. */
  mlpRatio?: number;
  lsInitValue?: number | null;
  /**
   * Attentional pooler (CoCa): true = one pooler whose first query is the pooled feature; 'parallel' /
   * 'cascade' add a separate one-query contrastive pooler. Default false.
   */
  attentionalPool?: boolean | 'parallel' | 'cascade';
  /** Default 256. */
  attnPoolerQueries?: number;
  /** Default 8. */
  attnPoolerHeads?: number;
  /** Default 512. */
  outputDim?: number;
  /** Fraction of patch tokens dropped while training (Li et al. 2023, FLIP). Default 0. */
  patchDropout?: number;
  /** Default false. */
  noLnPre?: boolean;
  /** 'learnable' (default) or the fixed 'sin_cos_2d'. */
  posEmbedType?: 'learnable' | 'sin_cos_2d';
  /** 'tok' (default, class token), 'avg' (mean of the patch tokens) or 'none'. */
  poolType?: 'tok' | 'avg' | 'none';
  /** Apply `ln_post` to the pooled vector only. Default false. */
  finalLnAfterPool?: boolean;
  /** Default 'gelu'. */
  actLayer?: ClipActivation;
  outputTokens?: boolean;
}
