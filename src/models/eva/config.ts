import type { BackboneCommonConfig } from '../backbone.js';
import { resolveConfig } from '../resolveConfig.js';

/** Head pooling of {@link Eva} (timm's `global_pool`; attention pooling 'map' is not ported). */
export type EvaPool = '' | 'avg' | 'avgmax' | 'max' | 'token';

/**
 * Configuration of {@link eva} (timm's `Eva` constructor arguments, camelCase). EVA-01 (Fang et al.
 * 2023, "EVA: Exploring the Limits of Masked Visual Representation Learning at Scale") is a ViT with
 * global average pooling; EVA-02 (Fang et al. 2023, "EVA-02: A Visual Representation for Neon Genesis",
 * sec. 2.1) adds 2-D RoPE, SwiGLU and sub-LN; the EVA-CLIP towers pool the class token.
 */
export interface EvaConfig extends BackboneCommonConfig {
  /** Input image size (square number or `[H, W]`); the input size is fixed to it. Default 224. */
  imgSize?: number | [number, number];
  /** Default 16. */
  patchSize?: number;
  /** Default 'avg' (mean of the patch tokens, then `fc_norm`); 'token' takes the class token after `norm`. */
  globalPool?: EvaPool;
  /** Default 768. */
  embedDim?: number;
  /** Default 12. */
  depth?: number;
  /** Default 12. */
  numHeads?: number;
  /** q and v biases (k never has one). Default true. */
  qkvBias?: boolean;
  /** One `qkv` projection with `q_bias` / `v_bias` (true, default) or `q_proj` / `k_proj` / `v_proj`. */
  qkvFused?: boolean;
  /** MLP hidden width `int(embedDim * mlpRatio)`. Default 4. */
  mlpRatio?: number;
  /** SwiGLU MLP (`fc1_g` / `fc1_x` with `scaleMlp`, else the packed `GluMlp`). Default false. */
  swigluMlp?: boolean;
  /** LayerNorm inside the MLP before `fc2` (sub-LN). Default false. */
  scaleMlp?: boolean;
  /** LayerNorm of the attention output before `proj` (`attn.norm`, EVA-CLIP). Default false. */
  scaleAttnInner?: boolean;
  /** Dropout after the position embedding. Default 0. */
  posDropRate?: number;
  /** Dropout after the attention / MLP projections. Default 0. */
  projDropRate?: number;
  /** Dropout on the attention probabilities. Default 0. */
  attnDropRate?: number;
  /** LayerScale init value (`gamma_1` / `gamma_2`, pre-norm blocks only); null = none. Default null. */
  initValues?: number | null;
  /** Default true. */
  classToken?: boolean;
  /** Register tokens after the class token (`reg_token`). Default 0. */
  numRegTokens?: number;
  /** Position embedding without rows for the prefix tokens (added before they are prepended). Default false. */
  noEmbedClass?: boolean;
  /** Learned absolute position embedding `pos_embed`. Default true. */
  useAbsPosEmb?: boolean;
  /** 2-D rotary position embedding on q and k of the patch tokens. Default false. */
  useRotPosEmb?: boolean;
  /** Only 'cat' (EVA's `RotaryEmbeddingCat`); timm's 'mixed' and 'dinov3' are not ported. */
  ropeType?: 'cat';
  /** Pre-training grid of the RoPE positions (`arange(H) / H * ref`); number = square. Default null. */
  refFeatShape?: number | [number, number] | null;
  /** Default 10000. */
  ropeTemperature?: number;
  /** Default 0. */
  ropeGridOffset?: number;
  /** Default 'ij'. */
  ropeGridIndexing?: 'ij' | 'xy';
  /** Post-norm blocks `x + norm1(attn(x))`, `x + norm2(mlp(x))` (EVA-02-E). Default false. */
  usePostNorm?: boolean;
  /** LayerNorm `norm_pre` after the embeddings (the patch projection then has no bias). Default false. */
  usePreTransformerNorm?: boolean;
  /** Final `norm` over all tokens; default (null): on unless `fc_norm` is. */
  usePostTransformerNorm?: boolean | null;
  /** `fc_norm` after pooling; default (null): on for `globalPool: 'avg'`. */
  useFcNorm?: boolean | null;
  /** Scale of the classifier init (timm's `head_init_scale`). Default 0.001. */
  headInitScale?: number;
  /** Not ported (the input size is fixed at `imgSize`). */
  dynamicImgSize?: false;
  /** Not ported. */
  patchDropRate?: 0;
}

/** {@link EvaConfig} with every default applied (what `model.config` holds). */
export interface ResolvedEvaConfig {
  imgSize: [number, number];
  patchSize: number;
  inChans: number;
  numClasses: number;
  globalPool: EvaPool;
  embedDim: number;
  depth: number;
  numHeads: number;
  qkvBias: boolean;
  qkvFused: boolean;
  mlpRatio: number;
  swigluMlp: boolean;
  scaleMlp: boolean;
  scaleAttnInner: boolean;
  dropRate: number;
  posDropRate: number;
  projDropRate: number;
  attnDropRate: number;
  dropPathRate: number;
  initValues: number | null;
  classToken: boolean;
  numRegTokens: number;
  noEmbedClass: boolean;
  useAbsPosEmb: boolean;
  useRotPosEmb: boolean;
  ropeType: 'cat';
  refFeatShape: [number, number] | null;
  ropeTemperature: number;
  ropeGridOffset: number;
  ropeGridIndexing: 'ij' | 'xy';
  usePostNorm: boolean;
  usePreTransformerNorm: boolean;
  usePostTransformerNorm: boolean | null;
  useFcNorm: boolean | null;
  headInitScale: number;
  featuresOnly: boolean;
  outIndices?: number[];
}

/** timm's `Eva` defaults: {@link ResolvedEvaConfig} without `outIndices` (which defaults to every block). */
export const EVA_DEFAULTS: Omit<ResolvedEvaConfig, 'outIndices'> = {
  imgSize: [224, 224],
  patchSize: 16,
  inChans: 3,
  numClasses: 1000,
  globalPool: 'avg',
  embedDim: 768,
  depth: 12,
  numHeads: 12,
  qkvBias: true,
  qkvFused: true,
  mlpRatio: 4,
  swigluMlp: false,
  scaleMlp: false,
  scaleAttnInner: false,
  dropRate: 0,
  posDropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0,
  initValues: null,
  classToken: true,
  numRegTokens: 0,
  noEmbedClass: false,
  useAbsPosEmb: true,
  useRotPosEmb: false,
  ropeType: 'cat',
  refFeatShape: null,
  ropeTemperature: 10000,
  ropeGridOffset: 0,
  ropeGridIndexing: 'ij',
  usePostNorm: false,
  usePreTransformerNorm: false,
  usePostTransformerNorm: null,
  useFcNorm: null,
  headInitScale: 0.001,
  featuresOnly: false,
};

/** Apply timm's defaults ({@link EVA_DEFAULTS}) to an {@link EvaConfig}. */
export function resolveEvaConfig(cfg: EvaConfig): ResolvedEvaConfig {
  const out = resolveConfig(EVA_DEFAULTS, cfg) as ResolvedEvaConfig;
  const img = cfg.imgSize ?? EVA_DEFAULTS.imgSize;
  const ref = cfg.refFeatShape ?? null;
  out.imgSize = Array.isArray(img) ? [img[0], img[1]] : [img, img];
  out.refFeatShape = ref === null ? null : Array.isArray(ref) ? [ref[0], ref[1]] : [ref, ref];
  if (cfg.outIndices !== undefined) out.outIndices = [...cfg.outIndices];
  return out;
}
