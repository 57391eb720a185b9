import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { pasteMasksInImage } from '../../layers/detection/masks.js';
import { LoadStateDictOptions, LoadStateDictResult, Module } from '../../layers/module.js';
import {
  checkImageSizes,
  checkLevels,
  checkTargets,
  Detections,
  DetTarget,
  featureSizesOf,
  ImageSize,
  PadOptions,
  renameKeys,
} from './common.js';
import { RegionProposalNetwork } from './rpn.js';
import { RoiHeads } from './roiHeads.js';

/** Configuration of {@link maskRcnnHeads}: torchvision `MaskRCNN(...)` keyword arguments in camelCase. */
export interface MaskRcnnConfig {
  /** Including the background class 0. */
  numClasses: number;
  inChannels: number;
  rpnAnchorSizes: number[][];
  rpnAspectRatios: number[][];
  rpnConvDepth?: number;
  rpnPreNmsTopNTrain?: number;
  rpnPreNmsTopNTest?: number;
  rpnPostNmsTopNTrain?: number;
  rpnPostNmsTopNTest?: number;
  rpnNmsThresh?: number;
  rpnFgIouThresh?: number;
  rpnBgIouThresh?: number;
  rpnBatchSizePerImage?: number;
  rpnPositiveFraction?: number;
  rpnScoreThresh?: number;
  /** Names of the input levels, in order. */
  featureNames?: string[];
  roiFeatmapNames?: string[];
  boxRoiOutputSize?: number;
  boxRoiSamplingRatio?: number;
  maskRoiOutputSize?: number;
  maskRoiSamplingRatio?: number;
  canonicalScale?: number;
  canonicalLevel?: number;
  representationSize?: number;
  maskLayers?: number[];
  maskDilation?: number;
  maskDimReduced?: number;
  boxScoreThresh?: number;
  boxNmsThresh?: number;
  boxDetectionsPerImg?: number;
  boxFgIouThresh?: number;
  boxBgIouThresh?: number;
  boxBatchSizePerImage?: number;
  boxPositiveFraction?: number;
  /** null = (10, 10, 5, 5). */
  bboxRegWeights?: [number, number, number, number] | null;
}

/** Every Mask R-CNN training loss. */
export interface MaskRcnnLosses {
  rpnObjectness: tf.Scalar;
  rpnBoxReg: tf.Scalar;
  classifier: tf.Scalar;
  boxReg: tf.Scalar;
  mask: tf.Scalar;
}

const DEFAULTS = {
  rpnConvDepth: 1,
  rpnPreNmsTopNTrain: 2000,
  rpnPreNmsTopNTest: 1000,
  rpnPostNmsTopNTrain: 2000,
  rpnPostNmsTopNTest: 1000,
  rpnNmsThresh: 0.7,
  rpnFgIouThresh: 0.7,
  rpnBgIouThresh: 0.3,
  rpnBatchSizePerImage: 256,
  rpnPositiveFraction: 0.5,
  rpnScoreThresh: 0,
  featureNames: ['0', '1', '2', '3', 'pool'],
  roiFeatmapNames: ['0', '1', '2', '3'],
  boxRoiOutputSize: 7,
  boxRoiSamplingRatio: 2,
  maskRoiOutputSize: 14,
  maskRoiSamplingRatio: 2,
  canonicalScale: 224,
  canonicalLevel: 4,
  representationSize: 1024,
  maskLayers: [256, 256, 256, 256],
  maskDilation: 1,
  maskDimReduced: 256,
  boxScoreThresh: 0.05,
  boxNmsThresh: 0.5,
  boxDetectionsPerImg: 100,
  boxFgIouThresh: 0.5,
  boxBgIouThresh: 0.5,
  boxBatchSizePerImage: 512,
  boxPositiveFraction: 0.25,
};

/**
 * The Mask R-CNN heads (He et al. 2017) on a feature pyramid: torchvision `MaskRCNN` without its
 * backbone and transform. State-dict keys `rpn.head.*`, `roi_heads.box_head.*`, `roi_heads.box_predictor.*`,
 * `roi_heads.mask_head.*`, `roi_heads.mask_predictor.*`.
 */
export class MaskRcnnHeads extends Module {
  readonly cfg: Required<Omit<MaskRcnnConfig, 'bboxRegWeights'>> & { bboxRegWeights: [number, number, number, number] };
  readonly rpn: RegionProposalNetwork;
  readonly roiHeads: RoiHeads;

  constructor(config: MaskRcnnConfig) {
    super();
    check(
      Number.isInteger(config?.numClasses) && config.numClasses > 1,
      () => `maskRcnnHeads: numClasses (background included) must be an integer >= 2, got ${config?.numClasses}`,
    );
    check(
      Number.isInteger(config.inChannels) && config.inChannels > 0,
      () => `maskRcnnHeads: inChannels must be a positive integer, got ${config.inChannels}`,
    );
    const c = { ...DEFAULTS, ...config, bboxRegWeights: config.bboxRegWeights ?? ([10, 10, 5, 5] as [number, number, number, number]) };
    check(
      c.rpnAnchorSizes.length === c.featureNames.length,
      () => `maskRcnnHeads: ${c.rpnAnchorSizes.length} RPN anchor levels for ${c.featureNames.length} feature names`,
    );
    check(
      c.roiFeatmapNames.every((n) => c.featureNames.includes(n)),
      () =>
        `maskRcnnHeads: roiFeatmapNames ${JSON.stringify(c.roiFeatmapNames)} must be among featureNames ${JSON.stringify(c.featureNames)}`,
    );
    this.cfg = c as MaskRcnnHeads['cfg'];
    this.config = { ...c };
    this.rpn = this.addModule(
      'rpn',
      new RegionProposalNetwork({
        inChannels: c.inChannels,
        anchorSizes: c.rpnAnchorSizes,
        aspectRatios: c.rpnAspectRatios,
        convDepth: c.rpnConvDepth,
        preNmsTopNTrain: c.rpnPreNmsTopNTrain,
        preNmsTopNTest: c.rpnPreNmsTopNTest,
        postNmsTopNTrain: c.rpnPostNmsTopNTrain,
        postNmsTopNTest: c.rpnPostNmsTopNTest,
        nmsThresh: c.rpnNmsThresh,
        fgIouThresh: c.rpnFgIouThresh,
        bgIouThresh: c.rpnBgIouThresh,
        batchSizePerImage: c.rpnBatchSizePerImage,
        positiveFraction: c.rpnPositiveFraction,
        scoreThresh: c.rpnScoreThresh,
      }),
    );
    this.roiHeads = this.addModule(
      'roi_heads',
      new RoiHeads({
        numClasses: c.numClasses,
        inChannels: c.inChannels,
        featmapNames: c.roiFeatmapNames,
        boxRoiOutputSize: c.boxRoiOutputSize,
        boxRoiSamplingRatio: c.boxRoiSamplingRatio,
        maskRoiOutputSize: c.maskRoiOutputSize,
        maskRoiSamplingRatio: c.maskRoiSamplingRatio,
        canonicalScale: c.canonicalScale,
        canonicalLevel: c.canonicalLevel,
        representationSize: c.representationSize,
        maskLayers: c.maskLayers,
        maskDilation: c.maskDilation,
        maskDimReduced: c.maskDimReduced,
        boxScoreThresh: c.boxScoreThresh,
        boxNmsThresh: c.boxNmsThresh,
        boxDetectionsPerImg: c.boxDetectionsPerImg,
        boxFgIouThresh: c.boxFgIouThresh,
        boxBgIouThresh: c.boxBgIouThresh,
        boxBatchSizePerImage: c.boxBatchSizePerImage,
        boxPositiveFraction: c.boxPositiveFraction,
        bboxRegWeights: c.bboxRegWeights,
      }),
    );
  }

  forward(features: tf.Tensor4D[]): never {
    void features;
    check(false, 'maskRcnnHeads has no single forward: use loss(...) or detect(...), or rpn / roiHeads directly');
  }

  /** Training losses: RPN (training top-n proposals feed the RoI heads), box and mask branches. */
  loss(
    features: tf.Tensor4D[],
    targets: DetTarget[],
    imageSizes: ImageSize[],
    opts: PadOptions & {
      sampledPos?: (tf.Tensor1D | number[])[];
      sampledNeg?: (tf.Tensor1D | number[])[];
      sampledInds?: (tf.Tensor1D | number[])[];
    } = {},
  ): MaskRcnnLosses {
    checkLevels(features, this.cfg.inChannels, 'maskRcnnHeads.loss');
    checkImageSizes(imageSizes, features[0].shape[0]);
    checkTargets(targets, features[0].shape[0], 'maskRcnnHeads.loss');
    return tf.tidy(() => {
      const out = this.rpn.forward(features);
      const anchors = this.rpn.anchors(features, imageSizes, opts);
      const props = this.rpn.filterProposals(out.objectness, out.bboxDeltas, anchors, imageSizes, featureSizesOf(features), {
        training: true,
      });
      const rpnL = this.rpn.computeLoss(out.objectness, out.bboxDeltas, anchors, targets, opts);
      const roiL = this.roiHeads.computeLoss(features, props.boxes, imageSizes, targets, {
        sampledInds: opts.sampledInds,
        featureNames: this.cfg.featureNames,
      });
      return { rpnObjectness: rpnL.objectness, rpnBoxReg: rpnL.boxReg, ...roiL };
    });
  }

  /** Detections per image with masks pasted into the image: `[D, H_i, W_i]` probabilities. */
  detect(features: tf.Tensor4D[], imageSizes: ImageSize[], opts: PadOptions = {}): Detections[] {
    checkLevels(features, this.cfg.inChannels, 'maskRcnnHeads.detect');
    checkImageSizes(imageSizes, features[0].shape[0]);
    const out = this.rpn.forward(features);
    const anchors = this.rpn.anchors(features, imageSizes, opts);
    const props = this.rpn.filterProposals(out.objectness, out.bboxDeltas, anchors, imageSizes, featureSizesOf(features));
    const box = this.roiHeads.boxForward(features, props.boxes, imageSizes, this.cfg.featureNames);
    const dets = this.roiHeads.postprocessDetections(box.classLogits, box.boxRegression, props.boxes, imageSizes);
    const logits = this.roiHeads.maskForward(
      features,
      dets.map((d) => d.boxes),
      imageSizes,
      this.cfg.featureNames,
    );
    const probs = this.roiHeads.maskInference(
      logits,
      dets.map((d) => d.labels),
    );
    dets.forEach((d, i) => {
      d.masks = pasteMasksInImage(probs[i], d.boxes, imageSizes[i]);
    });
    tf.dispose([
      out.objectness,
      out.bboxDeltas,
      anchors,
      ...props.boxes,
      ...props.scores,
      box.boxFeatures,
      box.classLogits,
      box.boxRegression,
      logits,
      ...probs,
    ]);
    return dets;
  }

  /** Loads torchvision keys; version-1 names (`rpn.head.conv.*`, `mask_head.mask_fcn{i+1}.*`) are renamed. */
  override loadStateDict(sd: Record<string, tf.Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    return super.loadStateDict(
      renameKeys(sd, [
        [/^rpn\.head\.conv\.(weight|bias)$/, 'rpn.head.conv.0.0.$1'],
        [
          /^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$/,
          (_: string, i: string, w: string) => `roi_heads.mask_head.${Number(i) - 1}.0.${w}`,
        ],
      ]),
      opts,
    );
  }
}

/** Build the {@link MaskRcnnHeads}. */
export function maskRcnnHeads(config: MaskRcnnConfig): MaskRcnnHeads {
  return new MaskRcnnHeads(config);
}
