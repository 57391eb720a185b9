import { defineFamily } from '../registry.js';
import { vitDet, VitDetConfig } from './visionTransformerSam.js';

const SAM_BASE = { patchSize: 16, windowSize: 14, useRelPos: true };
const sa1b = (name: string) => ({ cropPct: 1.0, numClasses: 0, hfHubId: `timm/${name}.sa1b` });

/** timm's SAM-style ViT variants (`vision_transformer_sam.py`). */
const SAM: Record<string, VitDetConfig> = {
  samvit_base_patch16: {
    ...SAM_BASE,
    embedDim: 768,
    depth: 12,
    numHeads: 12,
    globalAttnIndexes: [2, 5, 8, 11],
    imgSize: 1024,
    numClasses: 0,
  },
  samvit_large_patch16: {
    ...SAM_BASE,
    embedDim: 1024,
    depth: 24,
    numHeads: 16,
    globalAttnIndexes: [5, 11, 17, 23],
    imgSize: 1024,
    numClasses: 0,
  },
  samvit_huge_patch16: {
    ...SAM_BASE,
    embedDim: 1280,
    depth: 32,
    numHeads: 16,
    globalAttnIndexes: [7, 15, 23, 31],
    imgSize: 1024,
    numClasses: 0,
  },
  samvit_base_patch16_224: {
    ...SAM_BASE,
    embedDim: 768,
    depth: 12,
    numHeads: 12,
    globalAttnIndexes: [2, 5, 8, 11],
    useAbsPos: false,
    imgSize: 224,
    neckChans: null,
    numClasses: 1000,
  },
};

defineFamily<VitDetConfig>({
  name: 'vitdet',
  factory: vitDet,
  variants: SAM,
  plain: true,
  pretrained: {
    samvit_base_patch16: sa1b('samvit_base_patch16'),
    samvit_large_patch16: sa1b('samvit_large_patch16'),
    samvit_huge_patch16: sa1b('samvit_huge_patch16'),
  },
  tiny: (s) => ({
    imgSize: s,
    patchSize: 16,
    embedDim: 16,
    depth: 2,
    numHeads: 2,
    windowSize: 2,
    globalAttnIndexes: [1],
    useRelPos: true,
    neckChans: 8,
    numClasses: 0,
  }),
});
