import { defineFamily, PretrainedCfg } from '../registry.js';
import type { ConvNeXtConfig } from './config.js';
import { convnextV2 } from './convnext.js';

const small = (depths: number[], dims: number[]): ConvNeXtConfig => ({ depths, dims, useGrn: true, lsInitValue: null, convMlp: true });
const large = (depths: number[], dims: number[]): ConvNeXtConfig => ({ depths, dims, useGrn: true, lsInitValue: null });

/**
 * timm's ConvNeXt V2 variants (`convnext.py`): atto..nano use the 1x1-conv MLP; the default tag of each
 * name gives the resolution (224 for all but huge, whose default `fcmae_ft_in22k_in1k_384` is 384).
 */
const VARIANTS: Record<string, ConvNeXtConfig> = {
  convnextv2_atto: small([2, 2, 6, 2], [40, 80, 160, 320]),
  convnextv2_femto: small([2, 2, 6, 2], [48, 96, 192, 384]),
  convnextv2_pico: small([2, 2, 6, 2], [64, 128, 256, 512]),
  convnextv2_nano: small([2, 2, 8, 2], [80, 160, 320, 640]),
  convnextv2_tiny: large([3, 3, 9, 3], [96, 192, 384, 768]),
  convnextv2_small: large([3, 3, 27, 3], [96, 192, 384, 768]),
  convnextv2_base: large([3, 3, 27, 3], [128, 256, 512, 1024]),
  convnextv2_large: large([3, 3, 27, 3], [192, 384, 768, 1536]),
  convnextv2_huge: large([3, 3, 27, 3], [352, 704, 1408, 2816]),
};

/** Default tag of each name. */
const TAGS: Record<string, string> = {
  convnextv2_atto: 'fcmae_ft_in1k',
  convnextv2_femto: 'fcmae_ft_in1k',
  convnextv2_pico: 'fcmae_ft_in1k',
  convnextv2_nano: 'fcmae_ft_in22k_in1k',
  convnextv2_tiny: 'fcmae_ft_in22k_in1k',
  convnextv2_small: 'untrained',
  convnextv2_base: 'fcmae_ft_in22k_in1k',
  convnextv2_large: 'fcmae_ft_in22k_in1k',
  convnextv2_huge: 'fcmae_ft_in22k_in1k_384',
};

const PRETRAINED: Record<string, Partial<PretrainedCfg>> = Object.fromEntries(
  Object.entries(TAGS).map(([n, tag]) => [
    n,
    n === 'convnextv2_huge' ? { inputSize: [3, 384, 384], cropPct: 1.0, hfHubId: `timm/${n}.${tag}` } : { hfHubId: `timm/${n}.${tag}` },
  ]),
);

defineFamily<ConvNeXtConfig>({
  name: 'convnextv2',
  factory: convnextV2,
  variants: VARIANTS,
  defaults: { cropPct: 0.875 },
  pretrained: PRETRAINED,
  tiny: () => ({ dims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numClasses: 0 }),
});
