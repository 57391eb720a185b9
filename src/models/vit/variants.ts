import { registerModel } from '../registry.js';
import { vit, VitConfig } from './visionTransformer.js';

const INCEPTION: [number, number, number] = [0.5, 0.5, 0.5];

/** timm's ViT variants (`vision_transformer.py`) with their default pretrained tags. */
const VIT: Record<string, VitConfig & { cropPct?: number; tag: string }> = {
  vit_tiny_patch16_224: { patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, tag: 'augreg_in21k_ft_in1k' },
  vit_tiny_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3, cropPct: 1.0, tag: 'augreg_in21k_ft_in1k' },
  vit_small_patch16_224: { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, tag: 'augreg_in21k_ft_in1k' },
  vit_small_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 384, depth: 12, numHeads: 6, cropPct: 1.0, tag: 'augreg_in21k_ft_in1k' },
  vit_base_patch16_224: { patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, tag: 'augreg2_in21k_ft_in1k' },
  vit_base_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, cropPct: 1.0, tag: 'augreg_in21k_ft_in1k' },
  vit_base_patch32_224: { patchSize: 32, embedDim: 768, depth: 12, numHeads: 12, tag: 'augreg_in21k_ft_in1k' },
  vit_large_patch16_224: { patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16, tag: 'augreg_in21k_ft_in1k' },
  vit_large_patch16_384: { imgSize: 384, patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16, cropPct: 1.0, tag: 'augreg_in21k_ft_in1k' },
};

for (const [name, { cropPct, tag, ...cfg }] of Object.entries(VIT)) {
  registerModel(name, 'vit', cfg as Record<string, unknown>, (c) => vit(c as VitConfig), {
    mean: INCEPTION,
    std: INCEPTION,
    cropPct: cropPct ?? 0.9,
    hfHubId: `timm/${name}.${tag}`,
  });
}
