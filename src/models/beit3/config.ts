import { check } from '../../errors.js';

/**
 * torchscale's `EncoderConfig` fields that BEiT-3 reads (Wang et al. 2022, "Image as a Foreign Language"),
 * in camelCase. Defaults are the unilm BEiT-3 switches (`beit3/modeling_utils.py` `_get_base_config`).
 */
export interface BEiT3Config {
  /** Square image size (default 224). */
  imgSize?: number;
  /** Patch size of the vision embedding (default 16). */
  patchSize?: number;
  inChans?: number;
  /** Text vocabulary (XLM-R sentencepiece: 64010). */
  vocabSize?: number;
  /** Modality experts: `.A` (vision) and `.B` (language) copies of every multiway module (default true). */
  multiway?: boolean;
  encoderEmbedDim?: number;
  encoderAttentionHeads?: number;
  encoderFfnEmbedDim?: number;
  encoderLayers?: number;
  /** Rows of the text position table (`encoder.embed_positions.B`), default 1024. */
  maxSourcePositions?: number;
  /** Multiway LayerNorm after the embeddings (default false). */
  layernormEmbedding?: boolean;
  /** Final multiway LayerNorm of a pre-LN encoder (default true). */
  normalizeOutput?: boolean;
  /** No vocabulary projection after the encoder (unilm: true; torchscale's own default is false). */
  noOutputLayer?: boolean;
  /** Sub-LN (Magneto): LayerNorms inside attention and FFN; forces pre-LN (default true). */
  subln?: boolean;
  /** DeepNet residual scaling `(2 N)^(1/4)`; forces post-LN and disables sub-LN (default false). */
  deepnorm?: boolean;
  /** Pre-LN (true) or post-LN (false) layers (default true). */
  encoderNormalizeBefore?: boolean;
  layernormEps?: number;
  activationFn?: 'gelu' | 'relu';
  /** Stochastic depth, linearly increasing over the layers (default 0). */
  dropPathRate?: number;
  /** Dropout after attention / FFN and on the embeddings (default 0). */
  dropout?: number;
  /** Dropout on the attention probabilities (default 0). */
  attentionDropout?: number;
  /** Dropout after the FFN activation (default 0). */
  activationDropout?: number;
  /** Gradient checkpointing flag of the reference (no effect here). */
  checkpointActivations?: boolean;
}

/** Every field of {@link BEiT3Config} after `EncoderConfig.postprocessing()`. */
export type ResolvedBEiT3Config = Required<BEiT3Config>;

/** Defaults of {@link BEiT3Config} before post-processing. */
export const BEIT3_DEFAULTS: ResolvedBEiT3Config = {
  imgSize: 224,
  patchSize: 16,
  inChans: 3,
  vocabSize: 64010,
  multiway: true,
  encoderEmbedDim: 768,
  encoderAttentionHeads: 12,
  encoderFfnEmbedDim: 3072,
  encoderLayers: 12,
  maxSourcePositions: 1024,
  layernormEmbedding: false,
  normalizeOutput: true,
  noOutputLayer: true,
  subln: true,
  deepnorm: false,
  encoderNormalizeBefore: true,
  layernormEps: 1e-5,
  activationFn: 'gelu',
  dropPathRate: 0,
  dropout: 0,
  attentionDropout: 0,
  activationDropout: 0,
  checkpointActivations: false,
};

/**
 * Apply the defaults and torchscale's `EncoderConfig.postprocessing()`, in its order: `deepnorm` forces
 * `encoderNormalizeBefore = false` and `subln = false`; then `subln` forces `encoderNormalizeBefore = true`
 * and `deepnorm = false`. Checks the sizes.
 */
export function resolveBeit3Config(config: BEiT3Config = {}): ResolvedBEiT3Config {
  const c: ResolvedBEiT3Config = { ...BEIT3_DEFAULTS };
  for (const [k, v] of Object.entries(config)) if (v !== undefined) (c as Record<string, unknown>)[k] = v;
  if (c.deepnorm) {
    c.encoderNormalizeBefore = false;
    c.subln = false;
  }
  if (c.subln) {
    c.encoderNormalizeBefore = true;
    c.deepnorm = false;
  }
  const posInt = (name: keyof BEiT3Config) => {
    const v = c[name] as number;
    check(Number.isInteger(v) && v > 0, () => `beit3: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  for (const n of [
    'imgSize',
    'patchSize',
    'inChans',
    'vocabSize',
    'encoderEmbedDim',
    'encoderAttentionHeads',
    'encoderFfnEmbedDim',
    'encoderLayers',
    'maxSourcePositions',
  ] as const)
    posInt(n);
  check(
    c.encoderEmbedDim % c.encoderAttentionHeads === 0,
    () => `beit3: encoderAttentionHeads ${c.encoderAttentionHeads} does not divide encoderEmbedDim ${c.encoderEmbedDim}`,
  );
  check(c.imgSize % c.patchSize === 0, () => `beit3: imgSize ${c.imgSize} is not divisible by patchSize ${c.patchSize}`);
  check(
    c.activationFn === 'gelu' || c.activationFn === 'relu',
    () => `beit3: activationFn must be 'gelu' or 'relu', got ${JSON.stringify(c.activationFn)}`,
  );
  return c;
}

/** DeepNet's residual scale `alpha = (2 N)^(1/4)` with `deepnorm`, else 1 (torchscale `EncoderLayer.alpha`). */
export function residualAlpha(c: ResolvedBEiT3Config): number {
  return c.deepnorm ? Math.pow(2 * c.encoderLayers, 0.25) : 1;
}
