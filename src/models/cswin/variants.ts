import { registerModel } from '../registry.js';
import type { CSWinConfig } from './config.js';
import { cswin } from './cswinTransformer.js';

/**
 * The official CSWin variants (`models/cswin.py`: `CSWin_64_12211_tiny_224`, `CSWin_64_24322_small_224`,
 * `CSWin_96_24322_base_224`, `CSWin_144_24322_large_224`, `CSWin_96_24322_base_384`,
 * `CSWin_144_24322_large_384`), registered under timm-style names.
 */
const VARIANTS: Record<string, CSWinConfig & { cropPct: number }> = {
  cswin_tiny_224: { embedDim: 64, depth: [1, 2, 21, 1], splitSize: [1, 2, 7, 7], numHeads: [2, 4, 8, 16], cropPct: 0.9 },
  cswin_small_224: { embedDim: 64, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [2, 4, 8, 16], cropPct: 0.9 },
  cswin_base_224: { embedDim: 96, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [4, 8, 16, 32], cropPct: 0.9 },
  cswin_large_224: { embedDim: 144, depth: [2, 4, 32, 2], splitSize: [1, 2, 7, 7], numHeads: [6, 12, 24, 24], cropPct: 0.9 },
  cswin_base_384: { imgSize: 384, embedDim: 96, depth: [2, 4, 32, 2], splitSize: [1, 2, 12, 12], numHeads: [4, 8, 16, 32], cropPct: 1.0 },
  cswin_large_384: { imgSize: 384, embedDim: 144, depth: [2, 4, 32, 2], splitSize: [1, 2, 12, 12], numHeads: [6, 12, 24, 24], cropPct: 1.0 },
};

for (const [name, { cropPct, ...cfg }] of Object.entries(VARIANTS)) {
  registerModel(name, 'cswin', { imgSize: 224, patchSize: 4, mlpRatio: 4, ...cfg } as Record<string, unknown>, (c) => cswin(c as CSWinConfig), { cropPct });
}
