/**
 * Tiny configurations of every backbone family (small widths, one block per stage, 32 / 64 px), for
 * the head x backbone tests. Each entry builds a fresh backbone for an input size.
 */
import { convnextV2 } from '../../src/models/convnextV2/index.js';
import { cswin } from '../../src/models/cswin/index.js';
import { mvitV2 } from '../../src/models/mvitV2/index.js';
import { pvtV2 } from '../../src/models/pvtV2/index.js';
import * as tf from '@tensorflow/tfjs';
import { swin, swinV2 } from '../../src/models/swin/index.js';
import type { SwinTransformer } from '../../src/models/swin/index.js';
import { vit } from '../../src/models/vit/index.js';
import { vitDet } from '../../src/models/vitDet/index.js';
import type { Backbone } from '../../src/models/backbone.js';

export interface Family {
  name: string;
  /** Plain (single-stride) backbone: multi-level heads need a simple feature pyramid in front. */
  plain: boolean;
  build(size: number, overrides?: Record<string, unknown>): Backbone;
}

/**
 * SwinV2 is built as timm builds it, with zero res-post-norms (every block the identity, so no
 * gradient reaches the attention and MLP weights at the first step). The generic plumbing checks
 * want every variable live, as after some training or a checkpoint: set those norms to unit weight.
 */
export function unitResPostNorm<M extends SwinTransformer>(m: M): M {
  for (const [name, p] of m.namedParameters()) {
    if (/^layers\.\d+\.blocks\.\d+\.norm[12]\.weight$/.test(name)) tf.tidy(() => p.variable.assign(tf.onesLike(p.variable)));
  }
  return m;
}

export const FAMILIES: Family[] = [
  { name: 'swin', plain: false, build: (s, o = {}) => swin({ imgSize: s, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0, ...o }) },
  { name: 'swinv2', plain: false, build: (s, o = {}) => unitResPostNorm(swinV2({ imgSize: s, patchSize: 4, embedDim: 8, depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 0, ...o })) },
  { name: 'cswin', plain: false, build: (s, o = {}) => cswin({ imgSize: s, embedDim: 8, depth: [1, 1, 1, 1], splitSize: [1, 1, 1, 1], numHeads: [2, 2, 2, 2], numClasses: 0, ...o }) },
  { name: 'convnextv2', plain: false, build: (_s, o = {}) => convnextV2({ dims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numClasses: 0, ...o }) },
  { name: 'pvtv2', plain: false, build: (_s, o = {}) => pvtV2({ embedDims: [8, 8, 16, 16], depths: [1, 1, 1, 1], numHeads: [1, 1, 2, 2], srRatios: [8, 4, 2, 1], mlpRatios: [2, 2, 2, 2], numClasses: 0, ...o }) },
  { name: 'mvitv2', plain: false, build: (s, o = {}) => mvitV2({ imgSize: s, cfg: { depths: [1, 1, 1, 1], embedDim: 8, numHeads: 1 }, numClasses: 0, ...o }) },
  { name: 'vit', plain: true, build: (s, o = {}) => vit({ imgSize: s, patchSize: 16, embedDim: 16, depth: 2, numHeads: 2, numClasses: 0, ...o }) },
  {
    name: 'vitdet',
    plain: true,
    build: (s, o = {}) => vitDet({ imgSize: s, patchSize: 16, embedDim: 16, depth: 2, numHeads: 2, windowSize: 2, globalAttnIndexes: [1], useRelPos: true, neckChans: 8, numClasses: 0, ...o }),
  },
];

/** The two input sizes every head x backbone pair runs at. */
export const SIZES = [32, 64];
