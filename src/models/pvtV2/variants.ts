import { defineFamily } from '../registry.js';
import { pvtV2, PvtV2Config } from './pyramidVisionTransformerV2.js';

/** timm's published PVT v2 variants (`pvt_v2.py`). */
const PVT_V2: Record<string, PvtV2Config> = {
  pvt_v2_b0: { depths: [2, 2, 2, 2], embedDims: [32, 64, 160, 256], numHeads: [1, 2, 5, 8] },
  pvt_v2_b1: { depths: [2, 2, 2, 2], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8] },
  pvt_v2_b2: { depths: [3, 4, 6, 3], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8] },
  pvt_v2_b3: { depths: [3, 4, 18, 3], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8] },
  pvt_v2_b4: { depths: [3, 8, 27, 3], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8] },
  pvt_v2_b5: { depths: [3, 6, 40, 3], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8], mlpRatios: [4, 4, 4, 4] },
  pvt_v2_b2_li: { depths: [3, 4, 6, 3], embedDims: [64, 128, 320, 512], numHeads: [1, 2, 5, 8], linear: true },
};

defineFamily<PvtV2Config>({
  name: 'pvtv2',
  factory: pvtV2,
  variants: PVT_V2,
  pretrained: Object.fromEntries(Object.keys(PVT_V2).map((n) => [n, { hfHubId: `timm/${n}.in1k` }])),
  tiny: () => ({
    embedDims: [8, 8, 16, 16],
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 2, 2],
    srRatios: [8, 4, 2, 1],
    mlpRatios: [2, 2, 2, 2],
    numClasses: 0,
  }),
});
