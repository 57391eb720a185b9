import { check } from '../../errors.js';
import { fcos, FcosConfig, FcosHead } from './fcos.js';
import { maskRcnnHeads, MaskRcnnConfig, MaskRcnnHeads } from './maskRcnn.js';
import { retinaNet, RetinaNetConfig, RetinaNetHead } from './retinaNet.js';

/** What {@link createDetectionHead} builds. */
export type DetectionHead = RetinaNetHead | FcosHead | MaskRcnnHeads;

const RETINA_SIZES = [32, 64, 128, 256, 512].map((x) => [x, Math.trunc(x * 2 ** (1 / 3)), Math.trunc(x * 2 ** (2 / 3))]);
const RATIOS = (n: number) => Array.from({ length: n }, () => [0.5, 1, 2]);

const BUILDERS: Record<string, (o: object) => DetectionHead> = {
  retinanet_resnet50_fpn: (o) =>
    retinaNet({ numClasses: 91, inChannels: 256, anchorSizes: RETINA_SIZES, aspectRatios: RATIOS(5), ...(o as Partial<RetinaNetConfig>) }),
  retinanet_resnet50_fpn_v2: (o) =>
    retinaNet({
      numClasses: 91,
      inChannels: 256,
      anchorSizes: RETINA_SIZES,
      aspectRatios: RATIOS(5),
      norm: 'group_norm',
      boxLoss: 'giou',
      ...(o as Partial<RetinaNetConfig>),
    }),
  fcos_resnet50_fpn: (o) => fcos({ numClasses: 91, inChannels: 256, ...(o as Partial<FcosConfig>) }),
  maskrcnn_resnet50_fpn: (o) =>
    maskRcnnHeads({
      numClasses: 91,
      inChannels: 256,
      rpnAnchorSizes: [[32], [64], [128], [256], [512]],
      rpnAspectRatios: RATIOS(5),
      ...(o as Partial<MaskRcnnConfig>),
    }),
};

/** The head part of torchvision's detection builders (91 COCO classes, 256 input channels, torchvision's anchors and thresholds). */
export function createDetectionHead(name: string, overrides: object = {}): DetectionHead {
  const b = BUILDERS[name];
  check(b, () => `createDetectionHead: unknown head '${name}', expected one of ${Object.keys(BUILDERS).join(', ')}`);
  return b(overrides);
}

/** Names accepted by {@link createDetectionHead}. */
export function listDetectionHeads(): string[] {
  return Object.keys(BUILDERS);
}
