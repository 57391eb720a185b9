import { registerModel } from '../registry.js';
import { MultiScaleVitCfg } from './config.js';
import { mvitV2, MultiScaleVitConfig } from './multiScaleVit.js';

/** timm's published MViTv2 architectures (`mvitv2.py` `model_cfgs`), all at 224 px. */
const MVITV2: Record<string, { cfg: MultiScaleVitCfg; numClassesPretrained?: number }> = {
  mvitv2_tiny: { cfg: { depths: [1, 2, 5, 2] } },
  mvitv2_small: { cfg: { depths: [1, 2, 11, 2] } },
  mvitv2_base: { cfg: { depths: [2, 3, 16, 3] } },
  mvitv2_large: { cfg: { depths: [2, 6, 36, 4], embedDim: 144, numHeads: 2, expandAttn: false } },
  mvitv2_small_cls: { cfg: { depths: [1, 2, 11, 2], useClsToken: true } },
  mvitv2_base_cls: { cfg: { depths: [2, 3, 16, 3], useClsToken: true }, numClassesPretrained: 19168 },
  mvitv2_large_cls: { cfg: { depths: [2, 6, 36, 4], embedDim: 144, numHeads: 2, useClsToken: true, expandAttn: true }, numClassesPretrained: 19168 },
  mvitv2_huge_cls: { cfg: { depths: [4, 8, 60, 8], embedDim: 192, numHeads: 3, useClsToken: true, expandAttn: true }, numClassesPretrained: 19168 },
};

for (const [name, { cfg, numClassesPretrained }] of Object.entries(MVITV2)) {
  registerModel(name, 'mvitv2', { cfg } as Record<string, unknown>, (c) => mvitV2(c as MultiScaleVitConfig), { cropPct: 0.9, numClasses: numClassesPretrained ?? 1000 });
}
