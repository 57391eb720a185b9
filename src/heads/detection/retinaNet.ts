import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { AnchorGenerator } from '../../layers/detection/anchors.js';
import { BoxCoder } from '../../layers/detection/boxCoder.js';
import { sigmoidFocalLoss } from '../../layers/detection/detectionLosses.js';
import { GroupNorm } from '../../layers/detection/groupNorm.js';
import { Matcher } from '../../layers/detection/matcher.js';
import { int32Tensor, tidyValues } from '../../layers/detection/util.js';
import { Conv2d } from '../../layers/conv2d.js';
import { LoadStateDictOptions, LoadStateDictResult, Module } from '../../layers/module.js';
import {
  checkImageSizes,
  checkLevels,
  checkTargets,
  densePostprocess,
  Detections,
  DetTarget,
  featureSizesOf,
  headConv,
  ImageSize,
  labelValues,
  PadOptions,
  renameKeys,
  resolvePaddedSize,
  tidyDetections,
} from './common.js';
import { boxLoss, BoxLossType, matchAnchorValues, rows, where } from './denseLoss.js';
import { Container, ConvTower, flattenLevels } from './towers.js';

/** Configuration of {@link retinaNet} (torchvision `RetinaNet` / `RetinaNetHead` arguments, camelCase). */
export interface RetinaNetConfig {
  numClasses: number;
  inChannels: number;
  /** Anchor sizes per level (the same count on every level). */
  anchorSizes: number[][];
  /** Anchor aspect ratios (h / w) per level. */
  aspectRatios: number[][];
  /** 'none' = torchvision v1 (conv bias, no norm), 'group_norm' = v2 (conv without bias + GroupNorm). */
  norm?: 'none' | 'group_norm';
  numGroups?: number | null;
  boxLoss?: BoxLossType;
  scoreThresh?: number;
  nmsThresh?: number;
  detectionsPerImg?: number;
  topkCandidates?: number;
  fgIouThresh?: number;
  bgIouThresh?: number;
  priorProbability?: number;
}

/** Dense outputs of a RetinaNet head: `[B, A, K]` logits and `[B, A, 4]` deltas, anchors ordered level, row, column, anchor. */
export interface RetinaNetOutputs {
  clsLogits: tf.Tensor3D;
  bboxRegression: tf.Tensor3D;
}

/** RetinaNet losses (scalars). */
export interface RetinaNetLosses {
  classification: tf.Scalar;
  bboxRegression: tf.Scalar;
}

type Resolved = Required<Omit<RetinaNetConfig, 'numGroups'>> & { numGroups: number };

/**
 * The RetinaNet head (Lin et al. 2017, sec. 4, Fig. 3): classification and box subnets of four 3x3
 * conv layers on every pyramid level, focal loss, per-level top-k and class-wise NMS; torchvision's
 * `RetinaNetHead` + `RetinaNet.compute_loss` / `postprocess_detections`. State-dict keys
 * `head.classification_head.*`, `head.regression_head.*`.
 */
export class RetinaNetHead extends Module {
  readonly cfg: Resolved;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder = new BoxCoder({ weights: [1, 1, 1, 1] });
  readonly proposalMatcher: Matcher;
  readonly numAnchors: number;
  private readonly clsTower: ConvTower;
  private readonly regTower: ConvTower;
  private readonly clsLogits: Conv2d;
  private readonly bboxReg: Conv2d;

  constructor(config: RetinaNetConfig) {
    super();
    check(
      Number.isInteger(config?.numClasses) && config.numClasses > 0,
      () => `retinaNet: numClasses must be a positive integer, got ${config?.numClasses}`,
    );
    check(
      Number.isInteger(config.inChannels) && config.inChannels > 0,
      () => `retinaNet: inChannels must be a positive integer, got ${config.inChannels}`,
    );
    const c: Resolved = {
      norm: 'none',
      boxLoss: 'l1',
      scoreThresh: 0.05,
      nmsThresh: 0.5,
      detectionsPerImg: 300,
      topkCandidates: 1000,
      fgIouThresh: 0.5,
      bgIouThresh: 0.4,
      priorProbability: 0.01,
      ...config,
      numGroups: config.numGroups ?? 32,
    } as Resolved;
    check(c.norm === 'none' || c.norm === 'group_norm', () => `retinaNet: norm must be 'none' or 'group_norm', got '${c.norm}'`);
    check(
      ['l1', 'smooth_l1', 'giou'].includes(c.boxLoss),
      () => `retinaNet: boxLoss must be 'l1', 'smooth_l1' or 'giou', got '${c.boxLoss}'`,
    );
    if (c.norm === 'group_norm')
      check(c.inChannels % c.numGroups === 0, () => `retinaNet: inChannels ${c.inChannels} must be a multiple of numGroups ${c.numGroups}`);
    this.cfg = c;
    this.config = { ...c };
    this.anchorGenerator = new AnchorGenerator({ sizes: c.anchorSizes, aspectRatios: c.aspectRatios });
    const apl = this.anchorGenerator.numAnchorsPerLocation();
    check(
      apl.every((a) => a === apl[0]),
      () => `retinaNet: every level needs the same number of anchors per location, got ${JSON.stringify(apl)}`,
    );
    this.numAnchors = apl[0];
    this.proposalMatcher = new Matcher({ highThreshold: c.fgIouThresh, lowThreshold: c.bgIouThresh, allowLowQualityMatches: true });
    const ch = c.inChannels;
    const norm = c.norm === 'group_norm' ? () => new GroupNorm(c.numGroups, ch) : null;
    const head = this.addModule('head', new Container());
    const cls = head.add('classification_head', new Container());
    const reg = head.add('regression_head', new Container());
    this.clsTower = cls.add('conv', new ConvTower(ch, 4, norm));
    const prior = -Math.log((1 - c.priorProbability) / c.priorProbability);
    this.clsLogits = cls.add('cls_logits', headConv(ch, this.numAnchors * c.numClasses, { biasValue: prior }));
    this.regTower = reg.add('conv', new ConvTower(ch, 4, norm));
    this.bboxReg = reg.add('bbox_reg', headConv(ch, this.numAnchors * 4));
  }

  /** Dense head outputs for NHWC levels (finest first). */
  forward(features: tf.Tensor4D[]): RetinaNetOutputs {
    checkLevels(features, this.cfg.inChannels, 'retinaNet.forward');
    check(
      features.length === this.cfg.anchorSizes.length,
      () => `retinaNet.forward: ${features.length} levels for ${this.cfg.anchorSizes.length} anchor levels`,
    );
    return tf.tidy(() => ({
      clsLogits: flattenLevels(
        features.map((f) => this.clsLogits.forward(this.clsTower.forward(f))),
        this.cfg.numClasses,
      ),
      bboxRegression: flattenLevels(
        features.map((f) => this.bboxReg.forward(this.regTower.forward(f))),
        4,
      ),
    }));
  }

  /** `[A, 4]` anchors for the levels (maps or sizes) of a padded batch holding `imageSizes`. */
  anchors(features: tf.Tensor4D[] | ImageSize[], imageSizes: ImageSize[], opts: PadOptions = {}): tf.Tensor2D {
    return this.anchorGenerator.anchors(featureSizesOf(features), resolvePaddedSize(imageSizes, opts));
  }

  /** Matched gt index per anchor and image: gt index, -1 background, -2 ignored (int32). */
  matchAnchors(anchors: tf.Tensor2D, targets: DetTarget[]): tf.Tensor1D[] {
    checkTargets(targets, targets.length, 'retinaNet.matchAnchors');
    return matchAnchorValues(this.proposalMatcher, anchors, targets).map((m) => int32Tensor(m));
  }

  /** Focal classification loss and box loss, each normalised per image by its foreground count and averaged over images. */
  computeLoss(
    outputs: RetinaNetOutputs,
    anchors: tf.Tensor2D,
    targets: DetTarget[],
    opts: { boxLoss?: BoxLossType } = {},
  ): RetinaNetLosses {
    const [b, a, k] = outputs.clsLogits.shape;
    checkTargets(targets, b, 'retinaNet.computeLoss');
    check(anchors.shape[0] === a, () => `retinaNet.computeLoss: ${anchors.shape[0]} anchors for ${a} outputs per image`);
    const type = opts.boxLoss ?? this.cfg.boxLoss;
    const matched = matchAnchorValues(this.proposalMatcher, anchors, targets);
    return tf.tidy(() => {
      const clsLosses: tf.Scalar[] = [];
      const boxLosses: tf.Scalar[] = [];
      const logits = tf.unstack(outputs.clsLogits) as tf.Tensor2D[];
      const regs = tf.unstack(outputs.bboxRegression) as tf.Tensor2D[];
      targets.forEach((t, i) => {
        const m = matched[i];
        const fg = where(m, (v) => v >= 0);
        const valid = where(m, (v) => v !== -2);
        const labels = labelValues(t);
        const oneHot = new Float32Array(valid.length * k);
        valid.forEach((row, r) => {
          if (m[row] >= 0) {
            const l = labels[m[row]];
            check(l >= 0 && l < k, () => `retinaNet: label ${l} of image ${i} outside [0, ${k})`);
            oneHot[r * k + l] = 1;
          }
        });
        const norm = Math.max(1, fg.length);
        const focal = tf.sum(sigmoidFocalLoss(rows(logits[i], valid), tf.tensor2d(oneHot, [valid.length, k])));
        clsLosses.push(tf.div(focal, norm) as tf.Scalar);
        if (fg.length === 0) {
          boxLosses.push(tf.mul(tf.sum(regs[i]), 0) as tf.Scalar);
          return;
        }
        const gt = rows(
          t.boxes,
          Array.from(fg, (j) => m[j]),
        );
        boxLosses.push(tf.div(boxLoss(type, this.boxCoder, rows(anchors, fg), gt, rows(regs[i], fg)), norm) as tf.Scalar);
      });
      return {
        classification: tf.div(tf.addN(clsLosses), b) as tf.Scalar,
        bboxRegression: tf.div(tf.addN(boxLosses), Math.max(1, b)) as tf.Scalar,
      };
    });
  }

  /** forward + anchors + {@link computeLoss}. */
  loss(
    features: tf.Tensor4D[],
    targets: DetTarget[],
    imageSizes: ImageSize[],
    opts: PadOptions & { boxLoss?: BoxLossType } = {},
  ): RetinaNetLosses {
    checkImageSizes(imageSizes, features[0]?.shape[0]);
    return tf.tidy(() => {
      const out = this.forward(features);
      const anchors = this.anchors(features, imageSizes, opts);
      const l = this.computeLoss(out, anchors, targets, opts);
      return { ...l };
    });
  }

  /** Detections per image (torchvision `postprocess_detections`; boxes clipped to each image's own size). */
  postprocess(outputs: RetinaNetOutputs, anchors: tf.Tensor2D, imageSizes: ImageSize[], featureSizes: ImageSize[]): Detections[] {
    const [b, a, k] = outputs.clsLogits.shape;
    checkImageSizes(imageSizes, b);
    const counts = featureSizes.map(([h, w]) => h * w * this.numAnchors);
    check(
      counts.reduce((s, v) => s + v, 0) === a,
      () =>
        `retinaNet.postprocess: feature sizes ${JSON.stringify(featureSizes)} give ${counts.reduce((s, v) => s + v, 0)} anchors, outputs have ${a}`,
    );
    return imageSizes.map((size, i) => {
      const scores = tidyValues(() => tf.sigmoid(outputs.clsLogits.slice([i, 0, 0], [1, a, k])));
      return tidyDetections(() => {
        const reg = tf.reshape(outputs.bboxRegression.slice([i, 0, 0], [1, a, 4]), [a, 4]) as tf.Tensor2D;
        return densePostprocess(scores, k, counts, (idx) => this.boxCoder.decode(rows(reg, idx), rows(anchors, idx)), size, this.cfg);
      });
    });
  }

  /** forward + anchors + {@link postprocess}. */
  detect(features: tf.Tensor4D[], imageSizes: ImageSize[], opts: PadOptions = {}): Detections[] {
    checkImageSizes(imageSizes, features[0]?.shape[0]);
    const out = this.forward(features);
    const anchors = this.anchors(features, imageSizes, opts);
    const dets = this.postprocess(out, anchors, imageSizes, featureSizesOf(features));
    tf.dispose([out.clsLogits, out.bboxRegression, anchors]);
    return dets;
  }

  /** Loads torchvision keys; old (version 1) tower names `conv.{2i}.*` are renamed to `conv.{i}.0.*`. */
  override loadStateDict(sd: Record<string, tf.Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const v1 = /^(head\.(?:classification|regression)_head\.conv)\.(\d+)\.(weight|bias)$/;
    return super.loadStateDict(
      renameKeys(sd, [[v1, (_: string, p: string, i: string, w: string) => `${p}.${Number(i) / 2}.0.${w}`]]),
      opts,
    );
  }
}

/** Build a {@link RetinaNetHead}. */
export function retinaNet(config: RetinaNetConfig): RetinaNetHead {
  return new RetinaNetHead(config);
}
