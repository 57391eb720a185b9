import { check } from '../../errors.js';
import { defineModels } from '../registry.js';
import { DenseClipConfig } from './config.js';
import { DenseClip } from './denseClip.js';

const TEXT = {
  type: 'CLIPTextContextEncoder' as const,
  contextLength: 13,
  vocabSize: 49408,
  transformerWidth: 512,
  transformerHeads: 8,
  transformerLayers: 12,
};
const DECODER = { type: 'ContextDecoder' as const, transformerWidth: 256, transformerHeads: 4, transformerLayers: 3, dropout: 0.1 };

/** The official DenseCLIP segmentation configs (`segmentation/configs/denseclip_fpn_*`): backbone, text encoder, context decoder. */
export const DENSECLIP_VARIANTS: Record<string, DenseClipConfig> = {
  denseclip_r50: {
    backbone: { type: 'CLIPResNetWithAttention', layers: [3, 4, 6, 3], outputDim: 1024, inputResolution: 512, width: 64 },
    textEncoder: { ...TEXT, embedDim: 1024 },
    contextDecoder: { ...DECODER, visualDim: 1024 },
    contextLength: 5,
    scoreConcatIndex: 3,
    tau: 0.07,
    tokenEmbedDim: 512,
    textDim: 1024,
    contextFeature: 'attention',
  },
  denseclip_r101: {
    backbone: { type: 'CLIPResNetWithAttention', layers: [3, 4, 23, 3], outputDim: 512, inputResolution: 512, width: 64 },
    textEncoder: { ...TEXT, embedDim: 512 },
    contextDecoder: { ...DECODER, visualDim: 512 },
    contextLength: 5,
    scoreConcatIndex: 3,
    tau: 0.07,
    tokenEmbedDim: 512,
    textDim: 512,
    contextFeature: 'attention',
  },
  denseclip_vit_b16: {
    backbone: {
      type: 'CLIPVisionTransformer',
      patchSize: 16,
      width: 768,
      layers: 12,
      heads: 12,
      outputDim: 512,
      inputResolution: 640,
      outIndices: [3, 5, 7, 11],
      getEmbeddings: true,
      dropPathRate: 0.1,
    },
    textEncoder: { ...TEXT, embedDim: 512 },
    contextDecoder: { ...DECODER, visualDim: 512 },
    contextLength: 5,
    scoreConcatIndex: 2,
    tau: 0.07,
    tokenEmbedDim: 512,
    textDim: 512,
    contextFeature: 'attention',
  },
};

/** Build a named official DenseCLIP config (top-level fields in `overrides` replace the variant's). */
export function createDenseClip(name: string, overrides: Partial<DenseClipConfig> = {}): DenseClip {
  const cfg = DENSECLIP_VARIANTS[name];
  check(cfg, () => `unknown DenseCLIP variant '${name}' (known: ${Object.keys(DENSECLIP_VARIANTS).join(', ')})`);
  return new DenseClip({ ...cfg, ...overrides });
}

defineModels<DenseClipConfig, DenseClip>({
  name: 'denseclip',
  kind: 'multimodal',
  factory: (c) => new DenseClip(c),
  variants: DENSECLIP_VARIANTS,
});
