import { defineFamily, IMAGENET_MEAN, IMAGENET_STD, PretrainedCfg } from '../registry.js';
import type { EvaConfig } from './config.js';
import { eva } from './eva.js';

/** OpenAI CLIP normalisation (timm's `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`), EVA's default. */
const OPENAI_CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** EVA-02 MLP ratio (`4 * 2 / 3`, the float timm uses). */
const R = (4 * 2) / 3;
const ROPE: EvaConfig = { useRotPosEmb: true, refFeatShape: [16, 16] };
/** EVA-02 Ti/S: fused qkv, packed SwiGLU (`GluMlp`). */
const ts = (embedDim: number, numHeads: number, imgSize: number, numClasses: number): EvaConfig => ({
  imgSize,
  patchSize: 14,
  embedDim,
  depth: 12,
  numHeads,
  mlpRatio: R,
  swigluMlp: true,
  ...ROPE,
  numClasses,
});
/** EVA-02 B/L: separate q/k/v, SwiGLU with sub-LN. */
const bl = (embedDim: number, depth: number, numHeads: number, imgSize: number, numClasses: number): EvaConfig => ({
  imgSize,
  patchSize: 14,
  embedDim,
  depth,
  numHeads,
  qkvFused: false,
  mlpRatio: R,
  swigluMlp: true,
  scaleMlp: true,
  ...ROPE,
  numClasses,
});
/** EVA-01 giant. */
const giant = (imgSize: number, extra: EvaConfig = {}): EvaConfig => ({
  imgSize,
  patchSize: 14,
  embedDim: 1408,
  depth: 40,
  numHeads: 16,
  mlpRatio: 6144 / 1408,
  ...extra,
});

/**
 * timm's `Eva` variants (`eva.py`); `numClasses` is that of each name's default pretrained tag (0 for the
 * masked-image-modelling checkpoints, the CLIP embedding width for the CLIP towers).
 */
const VARIANTS: Record<string, EvaConfig> = {
  eva02_tiny_patch14_224: ts(192, 3, 224, 0),
  eva02_tiny_patch14_336: ts(192, 3, 336, 1000),
  eva02_small_patch14_224: ts(384, 6, 224, 0),
  eva02_small_patch14_336: ts(384, 6, 336, 1000),
  eva02_base_patch14_224: bl(768, 12, 12, 224, 0),
  eva02_base_patch14_448: bl(768, 12, 12, 448, 1000),
  eva02_large_patch14_224: bl(1024, 24, 16, 224, 0),
  eva02_large_patch14_448: bl(1024, 24, 16, 448, 1000),
  eva02_base_patch16_clip_224: { ...bl(768, 12, 12, 224, 512), patchSize: 16, scaleAttnInner: true, globalPool: 'token' },
  eva02_large_patch14_clip_224: { ...bl(1024, 24, 16, 224, 768), scaleAttnInner: true, globalPool: 'token' },
  eva02_large_patch14_clip_336: { ...bl(1024, 24, 16, 336, 768), scaleAttnInner: true, globalPool: 'token' },
  eva02_enormous_patch14_clip_224: {
    imgSize: 224,
    patchSize: 14,
    embedDim: 1792,
    depth: 64,
    numHeads: 16,
    mlpRatio: 15360 / 1792,
    usePostNorm: true,
    globalPool: 'token',
    numClasses: 1024,
  },
  eva_giant_patch14_224: giant(224, { numClasses: 1000 }),
  eva_giant_patch14_336: giant(336, { numClasses: 1000 }),
  eva_giant_patch14_560: giant(560, { numClasses: 1000 }),
  eva_giant_patch14_clip_224: giant(224, { globalPool: 'token', numClasses: 1024 }),
};

/** Default tag of each name and what its weights expect beyond the family defaults. */
const TAGS: Record<string, [string, Partial<PretrainedCfg>]> = {
  eva02_tiny_patch14_224: ['mim_in22k', {}],
  eva02_tiny_patch14_336: ['mim_in22k_ft_in1k', { cropPct: 1.0 }],
  eva02_small_patch14_224: ['mim_in22k', {}],
  eva02_small_patch14_336: ['mim_in22k_ft_in1k', { cropPct: 1.0 }],
  eva02_base_patch14_224: ['mim_in22k', {}],
  eva02_base_patch14_448: ['mim_in22k_ft_in22k_in1k', { cropPct: 1.0, cropMode: 'squash' }],
  eva02_large_patch14_224: ['mim_in22k', {}],
  eva02_large_patch14_448: ['mim_in22k_ft_in22k_in1k', { cropPct: 1.0, cropMode: 'squash' }],
  eva02_base_patch16_clip_224: [
    'merged2b',
    { hfHubId: 'timm/eva02_base_patch16_clip_224.merged2b_s8b_b131k', hfHubFilename: 'open_clip_pytorch_model.bin' },
  ],
  eva02_large_patch14_clip_224: [
    'merged2b',
    { hfHubId: 'timm/eva02_large_patch14_clip_224.merged2b_s4b_b131k', hfHubFilename: 'open_clip_pytorch_model.bin' },
  ],
  eva02_large_patch14_clip_336: [
    'merged2b',
    { cropPct: 1.0, hfHubId: 'timm/eva02_large_patch14_clip_336.merged2b_s6b_b61k', hfHubFilename: 'open_clip_pytorch_model.bin' },
  ],
  eva02_enormous_patch14_clip_224: [
    'laion2b',
    { hfHubId: 'timm/eva02_enormous_patch14_clip_224.laion2b_s4b_b115k', hfHubFilename: 'open_clip_pytorch_model.bin' },
  ],
  eva_giant_patch14_224: ['clip_ft_in1k', {}],
  eva_giant_patch14_336: ['clip_ft_in1k', { cropPct: 1.0, cropMode: 'squash' }],
  eva_giant_patch14_560: ['m30m_ft_in22k_in1k', { cropPct: 1.0, cropMode: 'squash', mean: IMAGENET_MEAN, std: IMAGENET_STD }],
  eva_giant_patch14_clip_224: [
    'laion400m',
    { hfHubId: 'timm/eva_giant_patch14_clip_224.laion400m_s11b_b41k', hfHubFilename: 'open_clip_pytorch_model.bin' },
  ],
};

defineFamily<EvaConfig>({
  name: 'eva',
  factory: eva,
  variants: VARIANTS,
  defaults: { mean: OPENAI_CLIP_MEAN, std: OPENAI_CLIP_STD, cropPct: 0.9, interpolation: 'bicubic', fixedInputSize: true, license: 'mit' },
  pretrained: Object.fromEntries(
    Object.entries(TAGS).map(([n, [tag, extra]]) => [
      n,
      { numClasses: VARIANTS[n].numClasses, tag, hfHubId: `timm/${n}.${tag}`, ...extra },
    ]),
  ),
  plain: true,
  tiny: (s) => ({
    imgSize: s,
    patchSize: 16,
    embedDim: 16,
    depth: 2,
    numHeads: 2,
    qkvFused: false,
    mlpRatio: R,
    swigluMlp: true,
    scaleMlp: true,
    useRotPosEmb: true,
    refFeatShape: [4, 4],
    numClasses: 0,
  }),
});
