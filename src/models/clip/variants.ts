import { defineModels, PretrainedCfg } from '../registry.js';
import { CoCa, CocaConfig } from './coca.js';
import { openClipConfig } from './openClipConfig.js';

/** open_clip's `OPENAI_DATASET_MEAN` / `OPENAI_DATASET_STD` (the CLIP / CoCa image preprocessing). */
export const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const COCA_NAMES = ['coca_ViT-B-32', 'coca_ViT-L-14'];

/** open_clip's CoCa model configs (`model_configs/coca_*.json`), as `createModel(name)` builds them. */
export const COCA_VARIANTS: Record<string, CocaConfig> = Object.fromEntries(COCA_NAMES.map((n) => [n, openClipConfig(n)]));

defineModels<CocaConfig, CoCa>({
  name: 'coca',
  kind: 'multimodal',
  factory: (c) => new CoCa(c),
  variants: COCA_VARIANTS,
  pretrained: Object.fromEntries(
    COCA_NAMES.map((n): [string, Partial<PretrainedCfg>] => {
      const size = openClipConfig(n).visionCfg.imageSize ?? 224;
      const [h, w] = Array.isArray(size) ? size : [size, size];
      return [n, { inputSize: [3, h, w], mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD, cropPct: 1, interpolation: 'bicubic' }];
    }),
  ),
});
