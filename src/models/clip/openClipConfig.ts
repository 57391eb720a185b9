import { check } from '../../errors.js';
import type { ClipActivation } from '../../layers/residualAttentionBlock.js';
import type { ClipTextConfig, ClipVisionConfig } from './config.js';

/** open_clip's `CLIPVisionCfg` (camelCase): the image-tower fields of a model config. */
export interface ClipVisionCfg extends Omit<ClipVisionConfig, 'heads' | 'outputDim' | 'actLayer'> {
  /** Width of one attention head: `heads = width / headWidth`. Default 64. */
  headWidth?: number;
}

/** open_clip's `CLIPTextCfg` (camelCase): the text-tower fields of a model config. */
export type ClipTextCfg = Omit<ClipTextConfig, 'outputDim' | 'actLayer'>;

/** open_clip's `MultimodalCfg` (camelCase): the CoCa decoder fields. */
export interface MultimodalCfg {
  /** Default 77. */
  contextLength?: number;
  /** Default 49408. */
  vocabSize?: number;
  /** Default 512. */
  width?: number;
  /** Default 8. */
  heads?: number;
  /** Default 12. */
  layers?: number;
  lsInitValue?: number | null;
  /** Accepted for compatibility: open_clip does not pass it on (the decoder's MLP ratio is always 4). */
  mlpRatio?: number;
  /** Accepted for compatibility (unused by open_clip's decoder). */
  dimHead?: number;
  nQueries?: number;
  attnPoolerHeads?: number;
}

/** A model config of open_clip's `model_configs/<name>.json`, camelCase. */
export interface OpenClipModelConfig {
  embedDim: number;
  visionCfg: ClipVisionCfg;
  textCfg: ClipTextCfg;
  multimodalCfg?: MultimodalCfg;
  quickGelu?: boolean;
}

/** open_clip's `_build_vision_tower` arguments for the ViT image tower: the {@link ClipVisionConfig} of a config. */
export function visionTowerConfig(embedDim: number, cfg: ClipVisionCfg = {}, quickGelu = false): ClipVisionConfig {
  const { headWidth, ...rest } = cfg;
  const width = cfg.width ?? 768;
  const hw = headWidth ?? 64;
  check(width % hw === 0, () => `visionCfg.width ${width} is not a multiple of headWidth ${hw}`);
  return {
    ...rest,
    width,
    layers: cfg.layers ?? 12,
    patchSize: cfg.patchSize ?? 16,
    imageSize: cfg.imageSize ?? 224,
    heads: width / hw,
    outputDim: embedDim,
    actLayer: quickGelu ? 'quick_gelu' : 'gelu',
  };
}

/** open_clip's `_build_text_tower` arguments: the {@link ClipTextConfig} of a config. */
export function textTowerConfig(embedDim: number, cfg: ClipTextCfg = {}, quickGelu = false): ClipTextConfig {
  const act: ClipActivation = quickGelu ? 'quick_gelu' : 'gelu';
  return { ...cfg, outputDim: embedDim, actLayer: act };
}

const B32 = { imageSize: 224, layers: 12, width: 768, patchSize: 32 };
const B16 = { imageSize: 224, layers: 12, width: 768, patchSize: 16 };
const L14 = { imageSize: 224, layers: 24, width: 1024, patchSize: 14 };
const TEXT_B = { contextLength: 77, vocabSize: 49408, width: 512, heads: 8, layers: 12 };
const TEXT_L = { contextLength: 77, vocabSize: 49408, width: 768, heads: 12, layers: 12 };
const TEXT_H = { contextLength: 77, vocabSize: 49408, width: 1024, heads: 16, layers: 24 };
const COCA_VISION = { attentionalPool: true, attnPoolerHeads: 8, outputTokens: true };

/** open_clip's published ViT model configs (`src/open_clip/model_configs/*.json`), camelCase. */
const CONFIGS: Record<string, OpenClipModelConfig> = {
  'ViT-B-32': { embedDim: 512, visionCfg: B32, textCfg: TEXT_B },
  'ViT-B-32-quickgelu': { embedDim: 512, quickGelu: true, visionCfg: B32, textCfg: TEXT_B },
  'ViT-B-32-256': { embedDim: 512, visionCfg: { ...B32, imageSize: 256 }, textCfg: TEXT_B },
  'ViT-B-16': { embedDim: 512, visionCfg: B16, textCfg: TEXT_B },
  'ViT-B-16-quickgelu': { embedDim: 512, quickGelu: true, visionCfg: B16, textCfg: TEXT_B },
  'ViT-B-16-plus-240': {
    embedDim: 640,
    visionCfg: { imageSize: 240, layers: 12, width: 896, patchSize: 16 },
    textCfg: { contextLength: 77, vocabSize: 49408, width: 640, heads: 10, layers: 12 },
  },
  'ViT-L-14': { embedDim: 768, visionCfg: L14, textCfg: TEXT_L },
  'ViT-L-14-quickgelu': { embedDim: 768, quickGelu: true, visionCfg: L14, textCfg: TEXT_L },
  'ViT-L-14-336': { embedDim: 768, visionCfg: { ...L14, imageSize: 336 }, textCfg: TEXT_L },
  'ViT-L-14-336-quickgelu': { embedDim: 768, quickGelu: true, visionCfg: { ...L14, imageSize: 336 }, textCfg: TEXT_L },
  'ViT-H-14': { embedDim: 1024, visionCfg: { imageSize: 224, layers: 32, width: 1280, headWidth: 80, patchSize: 14 }, textCfg: TEXT_H },
  'ViT-H-14-quickgelu': {
    embedDim: 1024,
    quickGelu: true,
    visionCfg: { imageSize: 224, layers: 32, width: 1280, headWidth: 80, patchSize: 14 },
    textCfg: TEXT_H,
  },
  'ViT-g-14': {
    embedDim: 1024,
    visionCfg: { imageSize: 224, layers: 40, width: 1408, headWidth: 88, mlpRatio: 4.3637, patchSize: 14 },
    textCfg: TEXT_H,
  },
  'ViT-bigG-14': {
    embedDim: 1280,
    visionCfg: { imageSize: 224, layers: 48, width: 1664, headWidth: 104, mlpRatio: 4.9231, patchSize: 14 },
    textCfg: { contextLength: 77, vocabSize: 49408, width: 1280, heads: 20, layers: 32 },
  },
  'coca_ViT-B-32': {
    embedDim: 512,
    visionCfg: { ...B32, ...COCA_VISION },
    textCfg: { ...TEXT_B, contextLength: 76, embedCls: true, outputTokens: true },
    multimodalCfg: { contextLength: 76, vocabSize: 49408, width: 512, heads: 8, layers: 12, attnPoolerHeads: 8 },
  },
  'coca_ViT-L-14': {
    embedDim: 768,
    visionCfg: { ...L14, ...COCA_VISION },
    textCfg: { ...TEXT_L, contextLength: 76, embedCls: true, outputTokens: true },
    multimodalCfg: { contextLength: 76, vocabSize: 49408, width: 768, heads: 12, layers: 12, attnPoolerHeads: 12 },
  },
};

/** The names {@link openClipConfig} knows. */
export function listOpenClipConfigs(): string[] {
  return Object.keys(CONFIGS);
}

/**
 * open_clip's model config `<name>.json` in camelCase (a copy), e.g. `openClipConfig('ViT-B-32').textCfg` feeds
 * `clipTextTransformer(textTowerConfig(embedDim, textCfg, quickGelu))`.
 */
export function openClipConfig(name: string): OpenClipModelConfig {
  const c = CONFIGS[name];
  check(c !== undefined, () => `unknown open_clip model config '${name}' (known: ${Object.keys(CONFIGS).join(', ')})`);
  return JSON.parse(JSON.stringify(c)) as OpenClipModelConfig;
}
