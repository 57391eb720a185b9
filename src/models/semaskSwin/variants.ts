import * as tf from '@tensorflow/tfjs';
import { defineFamily, PretrainedCfg } from '../registry.js';
import type { SemaskSwinConfig } from './config.js';
import { semaskSwin, SemaskSwinTransformer } from './semaskSwinTransformer.js';

/** Backbone sizes of the SeMask-FPN configs (`semfpn_semask_swin_<size>_patch4_window<W>_<crop>_80k_<dataset>.py`). */
const SIZES: Record<string, SemaskSwinConfig> = {
  tiny: { embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24], windowSize: 7, semWindowSize: 7 },
  small: { embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24], windowSize: 7, semWindowSize: 7 },
  base: { embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32], windowSize: 12, semWindowSize: 12 },
  large: { embedDim: 192, depths: [2, 2, 18, 2], numHeads: [6, 12, 24, 48], windowSize: 12, semWindowSize: 12 },
};

/**
 * Datasets of the published SeMask-FPN models: the backbone's `numCls`, the decode head's classes and
 * the training crop per size. The COCO-Stuff configs leave the backbone at the base config's 150 classes.
 */
const DATASETS: Record<string, { numCls: number; classes: number; crop: Record<string, number> }> = {
  ade20k: { numCls: 150, classes: 150, crop: { tiny: 512, small: 512, base: 512, large: 640 } },
  cityscapes: { numCls: 19, classes: 19, crop: { tiny: 768, small: 768, base: 768, large: 768 } },
  coco_stuff10k: { numCls: 150, classes: 171, crop: { tiny: 512, small: 512, base: 512, large: 640 } },
};

const VARIANTS: Record<string, SemaskSwinConfig> = {};
const PRETRAINED: Record<string, Partial<PretrainedCfg>> = {};
for (const [dataset, d] of Object.entries(DATASETS)) {
  for (const [size, arch] of Object.entries(SIZES)) {
    const name = `semask_swin_${size}_patch4_window${arch.windowSize}_${dataset}`;
    // the official semantic-layer rule (semGlobalStages) follows from embedDim and numCls
    VARIANTS[name] = { ...arch, numCls: d.numCls, dropPathRate: 0.3 };
    const crop = d.crop[size];
    PRETRAINED[name] = { inputSize: [3, crop, crop], numClasses: d.classes };
  }
}

defineFamily<SemaskSwinConfig>({
  name: 'semask_swin',
  classifier: false,
  factory: semaskSwin,
  variants: VARIANTS,
  defaults: { cropPct: 1.0, interpolation: 'bilinear' },
  pretrained: PRETRAINED,
  tiny: (_s) => ({
    embedDim: 8,
    depths: [1, 1, 1, 1],
    numHeads: [1, 1, 2, 2],
    windowSize: 2,
    semWindowSize: 2,
    numCls: 3,
    semGlobalStages: [2, 3],
    dropPathRate: 0,
  }),
  // gamma of every semantic attention starts at zero (its residual branch is off, so its projections get
  // no gradient at the first step); 0.5 gives the state after some training
  liven: (m) => {
    for (const [name, p] of (m as SemaskSwinTransformer).namedParameters()) {
      if (name.endsWith('.gamma')) tf.tidy(() => p.variable.assign(tf.fill(p.variable.shape, 0.5)));
    }
  },
});
