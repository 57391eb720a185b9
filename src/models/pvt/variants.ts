import { defineFamily } from '../registry.js';
import type { PvtConfig } from './config.js';
import { pvt } from './pyramidVisionTransformer.js';

const COMMON: PvtConfig = {
  patchSize: 4,
  embedDims: [64, 128, 320, 512],
  numHeads: [1, 2, 5, 8],
  mlpRatios: [8, 8, 4, 4],
  qkvBias: true,
  normEps: 1e-6,
  srRatios: [8, 4, 2, 1],
};

/** The official PVT v1 variants (`classification/pvt.py`). */
const PVT: Record<string, PvtConfig> = {
  pvt_tiny: { ...COMMON, depths: [2, 2, 2, 2] },
  pvt_small: { ...COMMON, depths: [3, 4, 6, 3] },
  pvt_medium: { ...COMMON, depths: [3, 4, 18, 3] },
  pvt_large: { ...COMMON, depths: [3, 8, 27, 3] },
};

defineFamily<PvtConfig>({
  name: 'pvt',
  factory: pvt,
  variants: PVT,
  tiny: (s) => ({
    imgSize: s,
    patchSize: 4,
    embedDims: [8, 16, 32, 64],
    numHeads: [1, 2, 4, 8],
    mlpRatios: [2, 2, 2, 2],
    depths: [1, 1, 1, 1],
    srRatios: [2, 2, 1, 1],
    qkvBias: true,
    normEps: 1e-6,
    numClasses: 0,
  }),
});
