import { IMAGENET_MEAN, IMAGENET_STD, registerModel } from '../registry.js';
import { vitDet, VitDetConfig } from './visionTransformerSam.js';

/** timm's SAM-style ViT variants (`vision_transformer_sam.py`). */
const SAM: Record<string, VitDetConfig & { cropPct: number; tag?: string }> = {
  samvit_base_patch16: {
    patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, globalAttnIndexes: [2, 5, 8, 11], windowSize: 14, useRelPos: true, imgSize: 1024,
    numClasses: 0, cropPct: 1.0, tag: 'sa1b',
  },
  samvit_large_patch16: {
    patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16, globalAttnIndexes: [5, 11, 17, 23], windowSize: 14, useRelPos: true, imgSize: 1024,
    numClasses: 0, cropPct: 1.0, tag: 'sa1b',
  },
  samvit_huge_patch16: {
    patchSize: 16, embedDim: 1280, depth: 32, numHeads: 16, globalAttnIndexes: [7, 15, 23, 31], windowSize: 14, useRelPos: true, imgSize: 1024,
    numClasses: 0, cropPct: 1.0, tag: 'sa1b',
  },
  samvit_base_patch16_224: {
    patchSize: 16, embedDim: 768, depth: 12, numHeads: 12, globalAttnIndexes: [2, 5, 8, 11], windowSize: 14, useRelPos: true, useAbsPos: false,
    imgSize: 224, neckChans: null, numClasses: 1000, cropPct: 0.9,
  },
};

for (const [name, { cropPct, tag, ...cfg }] of Object.entries(SAM)) {
  registerModel(name, 'vitdet', cfg as Record<string, unknown>, (c) => vitDet(c as VitDetConfig), {
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    cropPct,
    numClasses: cfg.numClasses ?? 1000,
    ...(tag ? { hfHubId: `timm/${name}.${tag}` } : {}),
  });
}
