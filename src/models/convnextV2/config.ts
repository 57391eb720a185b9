import type { ActivationName } from '../../layers/activations.js';
import type { BackboneCommonConfig } from '../backbone.js';

/**
 * Configuration of timm's `ConvNeXt` (camelCase constructor arguments). {@link convnextV2} defaults
 * `useGrn: true` and `lsInitValue: null`, which is how timm builds ConvNeXt V2.
 */
export interface ConvNeXtConfig extends BackboneCommonConfig {
  /** Blocks per stage (default `[3, 3, 9, 3]`). */
  depths?: number[];
  /** Width of each stage (default `[96, 192, 384, 768]`). */
  dims?: number[];
  /** Depthwise kernel size, one for all stages or one per stage (default 7). */
  kernelSizes?: number | number[];
  /** Layer-scale init value, `null` = no layer scale (V2). timm's default 1e-6. */
  lsInitValue?: number | null;
  /** Only `'patch'` (a `patchSize` x `patchSize` stride-`patchSize` conv + LayerNorm) is supported. */
  stemType?: string;
  patchSize?: number;
  /** Only 32 is supported (timm's dilated variants for 8 / 16 are not). */
  outputStride?: number;
  /** Scale of the classifier init (timm's `head_init_scale`). */
  headInitScale?: number;
  /** Norm before pooling (`norm_pre` + plain classifier) instead of timm's default pool -> norm -> fc. */
  headNormFirst?: boolean;
  /** A hidden MLP layer in the head: not supported (must be null / undefined). */
  headHiddenSize?: number | null;
  /** 1x1-conv MLP: the MLP weights are stored `[out, in, 1, 1]` (the atto..nano V2 variants). */
  convMlp?: boolean;
  convBias?: boolean;
  /** Global response normalization in the block MLP (ConvNeXt V2). */
  useGrn?: boolean;
  actLayer?: ActivationName;
  /** Only LayerNorm (`'layernorm'` / `'layernorm2d'`) is supported. */
  normLayer?: string | null;
  /** LayerNorm epsilon everywhere (timm default: 1e-6). */
  normEps?: number | null;
}

/** The defaults of {@link ConvNeXtConfig} (timm's `ConvNeXt` defaults); `outIndices` defaults to every stage. */
export const CONVNEXT_DEFAULTS: Required<Omit<ConvNeXtConfig, 'outIndices'>> = {
  depths: [3, 3, 9, 3],
  dims: [96, 192, 384, 768],
  kernelSizes: 7,
  lsInitValue: 1e-6,
  stemType: 'patch',
  patchSize: 4,
  outputStride: 32,
  headInitScale: 1,
  headNormFirst: false,
  headHiddenSize: null,
  convMlp: false,
  convBias: true,
  useGrn: false,
  actLayer: 'gelu',
  normLayer: null,
  normEps: null,
  inChans: 3,
  numClasses: 1000,
  featuresOnly: false,
  globalPool: 'avg',
  dropRate: 0,
  dropPathRate: 0,
};
