import { check } from '../../errors.js';
import { defineModels } from '../registry.js';
import { BEiT3 } from './beit3.js';
import { BEiT3Config } from './config.js';

/** The unilm BEiT-3 configs (`beit3/modeling_utils.py` `_get_base_config` / `_get_large_config`). */
export const BEIT3_VARIANTS: Record<string, BEiT3Config> = {
  beit3_base_patch16_224: {
    imgSize: 224,
    patchSize: 16,
    encoderEmbedDim: 768,
    encoderAttentionHeads: 12,
    encoderFfnEmbedDim: 3072,
    encoderLayers: 12,
  },
  beit3_large_patch16_224: {
    imgSize: 224,
    patchSize: 16,
    encoderEmbedDim: 1024,
    encoderAttentionHeads: 16,
    encoderFfnEmbedDim: 4096,
    encoderLayers: 24,
  },
};

/** Build a named unilm BEiT-3 config (`overrides` are camelCase config fields). */
export function createBeit3(name: string, overrides: BEiT3Config = {}): BEiT3 {
  const cfg = BEIT3_VARIANTS[name];
  check(cfg, () => `unknown BEiT-3 variant '${name}' (known: ${Object.keys(BEIT3_VARIANTS).join(', ')})`);
  return new BEiT3({ ...cfg, ...overrides });
}

defineModels<BEiT3Config, BEiT3>({
  name: 'beit3',
  kind: 'multimodal',
  factory: (c) => new BEiT3(c),
  variants: BEIT3_VARIANTS,
  pretrained: Object.fromEntries(Object.keys(BEIT3_VARIANTS).map((n) => [n, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }])),
});
