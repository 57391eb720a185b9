import { registerModel } from '../registry.js';
import type { ConvNeXtConfig } from './config.js';
import { convnextV2 } from './convnext.js';

/** One named ConvNeXt V2 variant: architecture plus timm's default pretrained config. */
interface Variant {
  cfg: ConvNeXtConfig;
  /** Default input size of the variant's first (default) pretrained tag. */
  imgSize: number;
  cropPct: number;
  hfHubId: string;
}

const small = (depths: number[], dims: number[]): ConvNeXtConfig => ({ depths, dims, useGrn: true, lsInitValue: null, convMlp: true });
const large = (depths: number[], dims: number[]): ConvNeXtConfig => ({ depths, dims, useGrn: true, lsInitValue: null });

/**
 * timm's ConvNeXt V2 variants (`convnext.py`): atto..nano use the 1x1-conv MLP; the default tag of each
 * name gives the resolution (224 for all but huge, whose default `fcmae_ft_in22k_in1k_384` is 384).
 */
const VARIANTS: Record<string, Variant> = {
  convnextv2_atto: { cfg: small([2, 2, 6, 2], [40, 80, 160, 320]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_atto.fcmae_ft_in1k' },
  convnextv2_femto: { cfg: small([2, 2, 6, 2], [48, 96, 192, 384]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_femto.fcmae_ft_in1k' },
  convnextv2_pico: { cfg: small([2, 2, 6, 2], [64, 128, 256, 512]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_pico.fcmae_ft_in1k' },
  convnextv2_nano: { cfg: small([2, 2, 8, 2], [80, 160, 320, 640]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_nano.fcmae_ft_in22k_in1k' },
  convnextv2_tiny: { cfg: large([3, 3, 9, 3], [96, 192, 384, 768]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_tiny.fcmae_ft_in22k_in1k' },
  convnextv2_small: { cfg: large([3, 3, 27, 3], [96, 192, 384, 768]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_small.untrained' },
  convnextv2_base: { cfg: large([3, 3, 27, 3], [128, 256, 512, 1024]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_base.fcmae_ft_in22k_in1k' },
  convnextv2_large: { cfg: large([3, 3, 27, 3], [192, 384, 768, 1536]), imgSize: 224, cropPct: 0.875, hfHubId: 'timm/convnextv2_large.fcmae_ft_in22k_in1k' },
  convnextv2_huge: { cfg: large([3, 3, 27, 3], [352, 704, 1408, 2816]), imgSize: 384, cropPct: 1.0, hfHubId: 'timm/convnextv2_huge.fcmae_ft_in22k_in1k_384' },
};

for (const [name, v] of Object.entries(VARIANTS)) {
  registerModel(name, 'convnextv2', v.cfg as Record<string, unknown>, (c) => convnextV2(c as ConvNeXtConfig), {
    inputSize: [3, v.imgSize, v.imgSize],
    cropPct: v.cropPct,
    hfHubId: v.hfHubId,
  });
}
