import * as tf from '@tensorflow/tfjs';
import { defineFamily, PretrainedCfg } from '../registry.js';
import { swin, swinV2, SwinConfig, SwinV2Config } from './swinTransformer.js';

/** timm's published Swin variants (`swin_transformer.py`). */
const SWIN: Record<string, SwinConfig> = {
  swin_tiny_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swin_small_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swin_base_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swin_base_patch4_window12_384: {
    imgSize: 384,
    patchSize: 4,
    windowSize: 12,
    embedDim: 128,
    depths: [2, 2, 18, 2],
    numHeads: [4, 8, 16, 32],
  },
  swin_large_patch4_window7_224: { patchSize: 4, windowSize: 7, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48] },
  swin_large_patch4_window12_384: {
    imgSize: 384,
    patchSize: 4,
    windowSize: 12,
    embedDim: 192,
    depths: [2, 2, 18, 2],
    numHeads: [6, 12, 24, 48],
  },
  swin_s3_tiny_224: { patchSize: 4, windowSize: [7, 7, 14, 7], embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swin_s3_small_224: { patchSize: 4, windowSize: [14, 14, 14, 7], embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swin_s3_base_224: { patchSize: 4, windowSize: [7, 7, 14, 7], embedDim: 96, depths: [2, 2, 30, 2], numHeads: [3, 6, 12, 24] },
};

/** timm's published SwinV2 variants (`swin_transformer_v2.py`). */
const SWINV2: Record<string, SwinV2Config> = {
  swinv2_tiny_window16_256: { imgSize: 256, windowSize: 16, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swinv2_tiny_window8_256: { imgSize: 256, windowSize: 8, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] },
  swinv2_small_window16_256: { imgSize: 256, windowSize: 16, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swinv2_small_window8_256: { imgSize: 256, windowSize: 8, embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] },
  swinv2_base_window16_256: { imgSize: 256, windowSize: 16, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swinv2_base_window8_256: { imgSize: 256, windowSize: 8, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swinv2_base_window12_192: { imgSize: 192, windowSize: 12, embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] },
  swinv2_base_window12to16_192to256: {
    imgSize: 256,
    windowSize: 16,
    embedDim: 128,
    depths: [2, 2, 18, 2],
    numHeads: [4, 8, 16, 32],
    pretrainedWindowSizes: [12, 12, 12, 6],
  },
  swinv2_base_window12to24_192to384: {
    imgSize: 384,
    windowSize: 24,
    embedDim: 128,
    depths: [2, 2, 18, 2],
    numHeads: [4, 8, 16, 32],
    pretrainedWindowSizes: [12, 12, 12, 6],
  },
  swinv2_large_window12_192: { imgSize: 192, windowSize: 12, embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48] },
  swinv2_large_window12to16_192to256: {
    imgSize: 256,
    windowSize: 16,
    embedDim: 192,
    depths: [2, 2, 18, 2],
    numHeads: [6, 12, 24, 48],
    pretrainedWindowSizes: [12, 12, 12, 6],
  },
  swinv2_large_window12to24_192to384: {
    imgSize: 384,
    windowSize: 24,
    embedDim: 192,
    depths: [2, 2, 18, 2],
    numHeads: [6, 12, 24, 48],
    pretrainedWindowSizes: [12, 12, 12, 6],
  },
};

const SWIN_PRETRAINED: Record<string, Partial<PretrainedCfg>> = {
  swin_base_patch4_window12_384: { cropPct: 1.0 },
  swin_large_patch4_window12_384: { cropPct: 1.0 },
};
const SWINV2_PRETRAINED: Record<string, Partial<PretrainedCfg>> = {
  swinv2_base_window12_192: { numClasses: 21841 },
  swinv2_base_window12to24_192to384: { cropPct: 1.0 },
  swinv2_large_window12_192: { numClasses: 21841 },
  swinv2_large_window12to24_192to384: { cropPct: 1.0 },
};

defineFamily<SwinConfig>({
  name: 'swin',
  factory: swin,
  variants: SWIN,
  pretrained: SWIN_PRETRAINED,
  tiny: (s) => ({ imgSize: s, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 }),
});

defineFamily<SwinV2Config>({
  name: 'swinv2',
  factory: swinV2,
  variants: SWINV2,
  pretrained: SWINV2_PRETRAINED,
  tiny: (s) => ({ imgSize: s, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0 }),
  // timm zero-initialises the res-post-norms (every block starts as the identity, so no gradient
  // reaches attention and MLP at the first step); unit weights give the state after some training.
  liven: (m) => {
    for (const [name, p] of m.namedParameters()) {
      if (/^layers\.\d+\.blocks\.\d+\.norm[12]\.weight$/.test(name)) tf.tidy(() => p.variable.assign(tf.onesLike(p.variable)));
    }
  },
});
