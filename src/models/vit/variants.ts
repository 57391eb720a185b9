import { defineFamily, INCEPTION_MEAN, INCEPTION_STD } from '../registry.js';
import { vit, VitConfig } from './visionTransformer.js';

/** timm's ViT variants (`vision_transformer.py`) with their default pretrained tags. */
const VIT: Record<string, VitConfig & { tag: string }> = {
  vit_tiny_patch16_224: { patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, tag: 'augreg_in21k_ft_in1k' },
  vit_tiny_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, tag: 'augreg_in21k_ft_in1k' },
  vit_small_patch16_224: { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, tag: 'augreg_in21k_ft_in1k' },
  vit_small_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, tag: 'augreg_in21k_ft_in1k' },
  vit_base_patch16_224: { patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, tag: 'augreg2_in21k_ft_in1k' },
  vit_base_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, tag: 'augreg_in21k_ft_in1k' },
  vit_base_patch32_224: { patchSize: 32, embedDim: 768, depth: 12, numHeads: 12, tag: 'augreg_in21k_ft_in1k' },
  vit_large_patch16_224: { patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16, tag: 'augreg_in21k_ft_in1k' },
  vit_large_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16, tag: 'augreg_in21k_ft_in1k' },
};

const SIZE_384 = new Set(['vit_tiny_patch16_384', 'vit_small_patch16_384', 'vit_base_patch16_384', 'vit_large_patch16_384']);

defineFamily<VitConfig>({
  name: 'vit',
  factory: vit,
  variants: Object.fromEntries(Object.entries(VIT).map(([n, { tag: _tag, ...c }]) => [n, c])),
  defaults: { mean: INCEPTION_MEAN, std: INCEPTION_STD },
  pretrained: Object.fromEntries(
    Object.entries(VIT).map(([n, { tag }]) => [n, { hfHubId: `timm/${n}.${tag}`, ...(SIZE_384.has(n) ? { cropPct: 1.0 } : {}) }]),
  ),
  plain: true,
  tiny: (s) => ({ imgSize: s, patchSize: 16, embedDim: 16, depth: 2, numHeads: 2, numClasses: 0 }),
});
