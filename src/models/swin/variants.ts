import { registerModel } from '../registry.js';
import { swin, swinV2, SwinConfig, SwinV2Config } from './swinTransformer.js';

/** timm's published Swin variants (`swin_transformer.py`). */
const SWIN: Record<string, SwinConfig & { cropPct?: number; numClassesPretrained?: number }> = {
  swin_tiny_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swin_small_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swin_base_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swin_base_patch4_window12_384: { imgSize: 384, patchSize: 4, windowSize: 12, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32], cropPct: 1.0 },
  swin_large_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48] },
  swin_large_patch4_window12_384: { imgSize: 384, patchSize: 4, windowSize: 12, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48], cropPct: 1.0 },
  swin_s3_tiny_224: { patchSize: 4, windowSize: [7, 7, 14, 7], embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swin_s3_small_224: { patchSize: 4, windowSize: [14, 14, 14, 7], embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swin_s3_base_224: { patchSize: 4, windowSize: [7, 7, 14, 7], embedDim: 96, depths: [2, 2, 30, 2], numHeads: [3, 6, 12, 24] },
};

/** timm's published SwinV2 variants (`swin_transformer_v2.py`). */
const SWINV2: Record<string, SwinV2Config & { cropPct?: number; numClassesPretrained?: number }> = {
  swinv2_tiny_window16_256: { imgSize: 256, windowSize: 16, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swinv2_tiny_window8_256: { imgSize: 256, windowSize: 8, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swinv2_small_window16_256: { imgSize: 256, windowSize: 16, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swinv2_small_window8_256: { imgSize: 256, windowSize: 8, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swinv2_base_window16_256: { imgSize: 256, windowSize: 16, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swinv2_base_window8_256: { imgSize: 256, windowSize: 8, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swinv2_base_window12_192: { imgSize: 192, windowSize: 12, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32], numClassesPretrained: 21841 },
  swinv2_base_window12to16_192to256: {
    imgSize: 256, windowSize: 16, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32], pretrainedWindowSizes: [12, 12, 12, 6],
  },
  swinv2_base_window12to24_192to384: {
    imgSize: 384, windowSize: 24, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32], pretrainedWindowSizes: [12, 12, 12, 6], cropPct: 1.0,
  },
  swinv2_large_window12_192: { imgSize: 192, windowSize: 12, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48], numClassesPretrained: 21841 },
  swinv2_large_window12to16_192to256: {
    imgSize: 256, windowSize: 16, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48], pretrainedWindowSizes: [12, 12, 12, 6],
  },
  swinv2_large_window12to24_192to384: {
    imgSize: 384, windowSize: 24, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48], pretrainedWindowSizes: [12, 12, 12, 6], cropPct: 1.0,
  },
};

for (const [name, { cropPct, numClassesPretrained, ...cfg }] of Object.entries(SWIN)) {
  registerModel(name, 'swin', cfg as Record<string, unknown>, (c) => swin(c as SwinConfig), { cropPct: cropPct ?? 0.9, numClasses: numClassesPretrained ?? 1000 });
}
for (const [name, { cropPct, numClassesPretrained, ...cfg }] of Object.entries(SWINV2)) {
  registerModel(name, 'swinv2', cfg as Record<string, unknown>, (c) => swinV2(c as SwinV2Config), { cropPct: cropPct ?? 0.9, numClasses: numClassesPretrained ?? 1000 });
}
