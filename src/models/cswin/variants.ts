import { defineFamily } from '../registry.js';
import type { CSWinConfig } from './config.js';
import { cswin } from './cswinTransformer.js';

/**
 * The official CSWin variants (`models/cswin.py`: `CSWin_64_12211_tiny_224`, `CSWin_64_24322_small_224`,
 * `CSWin_96_24322_base_224`, `CSWin_144_24322_large_224`, `CSWin_96_24322_base_384`,
 * `CSWin_144_24322_large_384`), registered under timm-style names.
 */
const VARIANTS: Record<string, CSWinConfig> = {
  cswin_tiny_224: { embedDim: 64, depth: [1, 2, 21, 1], splitSize: [1, 2, 7, 7], numHeads: [2, 4, 8, 16] },
  cswin_small_224: { embedDim: 64, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [2, 4, 8, 16] },
  cswin_base_224: { embedDim: 96, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [4, 8, 16, 32] },
  cswin_large_224: { embedDim: 144, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [6, 12, 24, 24] },
  cswin_base_384: { imgSize: 384, embedDim: 96, depth: [2, 4, 32, 2], splitSize: [1, 2, 12, 12], numHeads: [4, 8, 16, 32] },
  cswin_large_384: { imgSize: 384, embedDim: 144, depth: [2, 4, 32, 2], splitSize: [1, 2, 12, 12], numHeads: [6, 12, 24, 24] },
};

defineFamily<CSWinConfig>({
  name: 'cswin',
  factory: cswin,
  variants: Object.fromEntries(Object.entries(VARIANTS).map(([n, c]) => [n, { imgSize: 224, patchSize: 4, mlpRatio: 4, ...c }])),
  pretrained: { cswin_base_384: { cropPct: 1.0 }, cswin_large_384: { cropPct: 1.0 } },
  tiny: (s) => ({ imgSize: s, embedDim: 8, depth: [1, 1, 1, 1], splitSize: [1, 1, 1, 1], numHeads: [2, 2, 2, 2], numClasses: 0 }),
});
