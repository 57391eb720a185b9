import { check } from '../../errors.js';
import { defineModels } from '../registry.js';
import type { VideoSwinConfig } from './config.js';
import { SwinTransformer3D, videoSwin } from './swinTransformer3d.js';

/** What the released checkpoints of a variant expect (mmaction's data pipeline). */
export interface VideoPretrainedCfg {
  /** `[C, T, H, W]` of the training clips. */
  inputSize: [number, number, number, number];
  /** RGB mean / std on 0-255 pixels (mmaction's `img_norm_cfg`). */
  mean: [number, number, number];
  std: [number, number, number];
  /** Classes of the released I3D head. */
  numClasses: number;
}

const MMACTION_NORM = {
  mean: [123.675, 116.28, 103.53] as [number, number, number],
  std: [58.395, 57.12, 57.375] as [number, number, number],
};
const swinT = { embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24] };
const swinS = { embedDim: 96, depths: [2, 2, 18, 2], numHeads: [3, 6, 12, 24] };
const swinB = { embedDim: 128, depths: [2, 2, 18, 2], numHeads: [4, 8, 16, 32] };
const common: VideoSwinConfig = { patchSize: [2, 4, 4], patchNorm: true };

/** The released Video Swin / BEVT backbones: config and pretrained config. */
export const VIDEO_SWIN_VARIANTS: Record<string, { config: VideoSwinConfig; pretrainedCfg: VideoPretrainedCfg }> = {
  video_swin_tiny_patch244_window877: {
    config: { ...common, ...swinT, windowSize: [8, 7, 7], dropPathRate: 0.1 },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 400 },
  },
  video_swin_small_patch244_window877: {
    config: { ...common, ...swinS, windowSize: [8, 7, 7], dropPathRate: 0.2 },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 400 },
  },
  video_swin_base_patch244_window877: {
    config: { ...common, ...swinB, windowSize: [8, 7, 7], dropPathRate: 0.3 },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 400 },
  },
  video_swin_base_patch244_window1677: {
    config: { ...common, ...swinB, windowSize: [16, 7, 7], dropPathRate: 0.4, pretrainedWindowSize: [8, 7, 7] },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 174 },
  },
  bevt_swin_base_patch244_window877_k400: {
    config: { ...common, ...swinB, windowSize: [8, 7, 7], dropPathRate: 0.3, pretrained2d: false },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 400 },
  },
  bevt_swin_base_patch244_window1677_ssv2: {
    config: { ...common, ...swinB, windowSize: [16, 7, 7], dropPathRate: 0.4, pretrained2d: false, pretrainedWindowSize: [8, 7, 7] },
    pretrainedCfg: { inputSize: [3, 32, 224, 224], ...MMACTION_NORM, numClasses: 174 },
  },
};

/** Names of the released video backbones, sorted; `filter` is a substring. */
export function listVideoModels(filter?: string): string[] {
  return Object.keys(VIDEO_SWIN_VARIANTS)
    .filter((n) => !filter || n.includes(filter))
    .sort();
}

/** A released variant's config and pretrained config, or a clear error listing the names. */
export function videoSwinVariant(name: string): { config: VideoSwinConfig; pretrainedCfg: VideoPretrainedCfg } {
  const v = VIDEO_SWIN_VARIANTS[name];
  check(v !== undefined, () => `unknown video model '${name}' (known: ${listVideoModels().join(', ')})`);
  return { config: { ...v.config }, pretrainedCfg: { ...v.pretrainedCfg } };
}

/** Build a released video backbone by name, `overrides` (camelCase config fields) replacing the variant's. */
export function createVideoModel(name: string, overrides: VideoSwinConfig = {}): SwinTransformer3D {
  return videoSwin({ ...videoSwinVariant(name).config, ...overrides });
}

defineModels<VideoSwinConfig, SwinTransformer3D>({
  name: 'video_swin',
  kind: 'video',
  factory: videoSwin,
  variants: Object.fromEntries(Object.entries(VIDEO_SWIN_VARIANTS).map(([n, v]) => [n, v.config])),
  pretrained: Object.fromEntries(
    Object.entries(VIDEO_SWIN_VARIANTS).map(([n, v]) => [
      n,
      {
        inputSize: [v.pretrainedCfg.inputSize[0], v.pretrainedCfg.inputSize[2], v.pretrainedCfg.inputSize[3]],
        numFrames: v.pretrainedCfg.inputSize[1],
        mean: v.pretrainedCfg.mean,
        std: v.pretrainedCfg.std,
        numClasses: v.pretrainedCfg.numClasses,
      },
    ]),
  ),
});
