import type { ContextDecoderConfig } from './contextDecoder.js';
import type { ClipResNetWithAttentionConfig } from './resnet.js';
import type { ClipTextContextEncoderConfig } from './textContextEncoder.js';
import type { DenseClipVisionTransformerConfig } from './visionTransformer.js';

/** The backbone of a DenseCLIP model, with the official `type`. */
export type DenseClipBackboneConfig =
  | ({ type: 'CLIPResNetWithAttention' } & ClipResNetWithAttentionConfig)
  | ({ type: 'CLIPVisionTransformer' } & DenseClipVisionTransformerConfig)
  | { type: 'GivenFeatures' };

/** DenseCLIP's constructor arguments (`segmentation/denseclip/denseclip.py` `DenseCLIP`) in camelCase. */
export interface DenseClipConfig {
  backbone: DenseClipBackboneConfig;
  textEncoder: { type?: 'CLIPTextContextEncoder' } & ClipTextContextEncoderConfig;
  contextDecoder: { type?: 'ContextDecoder' } & ContextDecoderConfig;
  /** Columns of the class-name token ids; the text encoder adds `textEncoder.contextLength - contextLength` learnable contexts. */
  contextLength: number;
  /** Feature level that gets the score map appended (3 for ResNets, 2 for the ViT). Default 3. */
  scoreConcatIndex?: number;
  /** Temperature of the auxiliary pixel-text loss. Default 0.07. */
  tau?: number;
  /** Width of the learnable contexts (= the text transformer width). Default 512. */
  tokenEmbedDim?: number;
  /** Width of the text embeddings (= gamma's length). Default 1024. */
  textDim?: number;
  /** Only 'attention' works in the official code. */
  contextFeature?: 'attention';
  /** Accepted and ignored (the segmentor in the tasks builds its own heads). */
  decodeHead?: unknown;
  /** Accepted and ignored: token ids are passed in. */
  classNames?: string[];
  /** Accepted and ignored. */
  textHead?: boolean;
}
