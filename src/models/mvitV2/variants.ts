import { defineFamily } from '../registry.js';
import { mvitV2, MultiScaleVitConfig } from './multiScaleVit.js';

/** timm's published MViTv2 architectures (`mvitv2.py` `model_cfgs`), all at 224 px. */
const MVITV2: Record<string, MultiScaleVitConfig> = {
  mvitv2_tiny: { cfg: { depths: [1, 2, 5, 2] } },
  mvitv2_small: { cfg: { depths: [1, 2, 11, 2] } },
  mvitv2_base: { cfg: { depths: [2, 3, 16, 3] } },
  mvitv2_large: { cfg: { depths: [2, 6, 36, 4], embedDim: 144, numHeads: 2, expandAttn: false } },
  mvitv2_small_cls: { cfg: { depths: [1, 2, 11, 2], useClsToken: true } },
  mvitv2_base_cls: { cfg: { depths: [2, 3, 16, 3], useClsToken: true } },
  mvitv2_large_cls: { cfg: { depths: [2, 6, 36, 4], embedDim: 144, numHeads: 2, useClsToken: true, expandAttn: true } },
  mvitv2_huge_cls: { cfg: { depths: [4, 8, 60, 8], embedDim: 192, numHeads: 3, useClsToken: true, expandAttn: true } },
};

defineFamily<MultiScaleVitConfig>({
  name: 'mvitv2',
  factory: mvitV2,
  variants: MVITV2,
  pretrained: { mvitv2_base_cls: { numClasses: 19168 }, mvitv2_large_cls: { numClasses: 19168 }, mvitv2_huge_cls: { numClasses: 19168 } },
  tiny: (s) => ({ imgSize: s, cfg: { depths: [1, 1, 1, 1], embedDim: 8, numHeads: 1 }, numClasses: 0 }),
});
