import * as tf from '@tensorflow/tfjs';
import { check, VisBackbonesError } from '../../errors.js';
import { boxIou, clipBoxesToImage, smallBoxKeep } from '../../layers/detection/boxes.js';
import { BoxCoder } from '../../layers/detection/boxCoder.js';
import { binaryCrossEntropyWithLogits, smoothL1 } from '../../layers/detection/detectionLosses.js';
import { Matcher } from '../../layers/detection/matcher.js';
import { MultiScaleRoiAlign } from '../../layers/detection/multiScaleRoiAlign.js';
import { projectMasksOnBoxes } from '../../layers/detection/masks.js';
import { batchedNmsValues } from '../../layers/detection/nms.js';
import { floatValues, int32Tensor, intValues, tidyValues } from '../../layers/detection/util.js';
import { Conv2d } from '../../layers/conv2d.js';
import { ConvTranspose2d } from '../../layers/convTranspose2d.js';
import { uniform, normal } from '../../layers/init.js';
import { Linear } from '../../layers/linear.js';
import { Module } from '../../layers/module.js';
import { checkTargets, Detections, DetTarget, ImageSize, labelValues } from './common.js';
import { rows } from './denseLoss.js';
import { samplePositiveNegative } from './sampler.js';
import { Container } from './towers.js';

/** Settings of the {@link RoiHeads}. */
export interface RoiHeadsConfig {
  numClasses: number;
  inChannels: number;
  featmapNames: string[];
  boxRoiOutputSize: number;
  boxRoiSamplingRatio: number;
  maskRoiOutputSize: number;
  maskRoiSamplingRatio: number;
  canonicalScale: number;
  canonicalLevel: number;
  representationSize: number;
  maskLayers: number[];
  maskDilation: number;
  maskDimReduced: number;
  boxScoreThresh: number;
  boxNmsThresh: number;
  boxDetectionsPerImg: number;
  boxFgIouThresh: number;
  boxBgIouThresh: number;
  boxBatchSizePerImage: number;
  boxPositiveFraction: number;
  bboxRegWeights: [number, number, number, number];
}

function pytorchLinear(inF: number, outF: number): Linear {
  const l = new Linear(inF, outF);
  const b = 1 / Math.sqrt(inF);
  tf.tidy(() => l.weight.variable.assign(uniform([inF, outF], b)));
  tf.tidy(() => l.bias!.variable.assign(uniform([outF], b)));
  return l;
}

/** One `Conv2dNormActivation(norm_layer=None)` of `MaskRCNNHeads`: key `0`, 3x3 conv with dilation, ReLU. */
class MaskConv extends Module {
  readonly conv: Conv2d;
  constructor(inC: number, outC: number, dilation: number) {
    super();
    this.conv = this.addModule('0', new Conv2d(inC, outC, 3, { padding: dilation, dilation }));
    tf.tidy(() => this.conv.weight.variable.assign(normal(this.conv.weight.variable.shape, Math.sqrt(2 / (outC * 9)))));
    tf.tidy(() => this.conv.bias!.variable.assign(tf.zeros([outC])));
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => tf.relu(this.conv.forward(x)) as tf.Tensor4D);
  }
}

/**
 * The Fast R-CNN box branch and the Mask R-CNN mask branch (Girshick 2015; He et al. 2017, sec. 3):
 * MultiScaleRoIAlign, `TwoMLPHead`, `FastRCNNPredictor`, `MaskRCNNHeads`, `MaskRCNNPredictor`, the RoI
 * sampler, `fastrcnn_loss`, `maskrcnn_loss` and the detection postprocess of torchvision's `RoIHeads`.
 */
export class RoiHeads extends Module {
  readonly cfg: RoiHeadsConfig;
  readonly boxCoder: BoxCoder;
  readonly proposalMatcher: Matcher;
  readonly boxRoiPool: MultiScaleRoiAlign;
  readonly maskRoiPool: MultiScaleRoiAlign;
  private readonly fc6: Linear;
  private readonly fc7: Linear;
  private readonly clsScore: Linear;
  private readonly bboxPred: Linear;
  private readonly maskConvs: MaskConv[] = [];
  private readonly conv5Mask: ConvTranspose2d;
  private readonly maskFcnLogits: Conv2d;

  constructor(cfg: RoiHeadsConfig) {
    super();
    this.cfg = cfg;
    this.config = { ...cfg };
    this.boxCoder = new BoxCoder({ weights: cfg.bboxRegWeights });
    this.proposalMatcher = new Matcher({
      highThreshold: cfg.boxFgIouThresh,
      lowThreshold: cfg.boxBgIouThresh,
      allowLowQualityMatches: false,
    });
    const pool = (o: number, s: number) =>
      new MultiScaleRoiAlign({
        featmapNames: cfg.featmapNames,
        outputSize: o,
        samplingRatio: s,
        canonicalScale: cfg.canonicalScale,
        canonicalLevel: cfg.canonicalLevel,
      });
    this.boxRoiPool = pool(cfg.boxRoiOutputSize, cfg.boxRoiSamplingRatio);
    this.maskRoiPool = pool(cfg.maskRoiOutputSize, cfg.maskRoiSamplingRatio);
    const c = cfg.inChannels;
    const r = cfg.boxRoiOutputSize;
    const boxHead = this.addModule('box_head', new Container());
    this.fc6 = boxHead.add('fc6', pytorchLinear(c * r * r, cfg.representationSize));
    this.fc7 = boxHead.add('fc7', pytorchLinear(cfg.representationSize, cfg.representationSize));
    const pred = this.addModule('box_predictor', new Container());
    this.clsScore = pred.add('cls_score', pytorchLinear(cfg.representationSize, cfg.numClasses));
    this.bboxPred = pred.add('bbox_pred', pytorchLinear(cfg.representationSize, cfg.numClasses * 4));
    const maskHead = this.addModule('mask_head', new Container());
    let prev = c;
    cfg.maskLayers.forEach((l, i) => {
      this.maskConvs.push(maskHead.add(String(i), new MaskConv(prev, l, cfg.maskDilation)));
      prev = l;
    });
    const mp = this.addModule('mask_predictor', new Container());
    this.conv5Mask = mp.add('conv5_mask', new ConvTranspose2d(prev, cfg.maskDimReduced, 2));
    tf.tidy(() => this.conv5Mask.weight.variable.assign(normal(this.conv5Mask.weight.variable.shape, Math.sqrt(2 / (prev * 4)))));
    this.maskFcnLogits = mp.add('mask_fcn_logits', new Conv2d(cfg.maskDimReduced, cfg.numClasses, 1));
    tf.tidy(() =>
      this.maskFcnLogits.weight.variable.assign(normal(this.maskFcnLogits.weight.variable.shape, Math.sqrt(2 / cfg.numClasses))),
    );
  }

  forward(): never {
    throw new VisBackbonesError('RoiHeads has no forward: call boxForward / maskForward');
  }

  /**
   * Appends the gt boxes to each image's proposals, matches them (0.5 / 0.5), samples them (the given
   * `sampledInds` or at random) and encodes the regression targets of the picks.
   */
  selectTrainingSamples(
    proposals: tf.Tensor2D[],
    targets: DetTarget[],
    opts: { sampledInds?: (tf.Tensor1D | number[])[] } = {},
  ): { proposals: tf.Tensor2D[]; matchedIdxs: tf.Tensor1D[]; labels: tf.Tensor1D[]; regressionTargets: tf.Tensor2D[] } {
    checkTargets(targets, proposals.length, 'roiHeads.selectTrainingSamples');
    const out = {
      proposals: [] as tf.Tensor2D[],
      matchedIdxs: [] as tf.Tensor1D[],
      labels: [] as tf.Tensor1D[],
      regressionTargets: [] as tf.Tensor2D[],
    };
    proposals.forEach((p, i) => {
      const t = targets[i];
      const all = tf.concat([p, t.boxes], 0) as tf.Tensor2D;
      const n = all.shape[0];
      let matched: Int32Array;
      let labels: Int32Array;
      if (t.boxes.shape[0] === 0) {
        matched = new Int32Array(n);
        labels = new Int32Array(n);
      } else {
        const q = tf.tidy(() => boxIou(t.boxes, all));
        const m = this.proposalMatcher.matchValues(floatValues(q), t.boxes.shape[0], n);
        q.dispose();
        const gl = labelValues(t);
        matched = Int32Array.from(m, (v) => Math.max(v, 0));
        labels = Int32Array.from(m, (v, k) => (v === -1 ? 0 : v === -2 ? -1 : gl[matched[k]]));
      }
      let inds: number[];
      if (opts.sampledInds) {
        inds = Array.from(intValues(opts.sampledInds[i], `roiHeads.selectTrainingSamples: sampledInds[${i}]`));
        check(
          inds.every((k) => k >= 0 && k < n),
          () => `roiHeads.selectTrainingSamples: sampled indices of image ${i} must lie in [0, ${n})`,
        );
      } else {
        const { pos, neg } = samplePositiveNegative(labels, this.cfg.boxBatchSizePerImage, this.cfg.boxPositiveFraction);
        inds = [...pos, ...neg].sort((a, b) => a - b);
      }
      const sp = tf.tidy(() => rows(all, inds));
      const mi = Int32Array.from(inds, (k) => matched[k]);
      out.proposals.push(sp);
      out.matchedIdxs.push(int32Tensor(mi));
      out.labels.push(int32Tensor(Int32Array.from(inds, (k) => labels[k])));
      out.regressionTargets.push(
        tf.tidy(() => this.boxCoder.encode(t.boxes.shape[0] ? rows(t.boxes, mi) : (tf.zeros([inds.length, 4]) as tf.Tensor2D), sp)),
      );
      all.dispose();
    });
    return out;
  }

  /** Pooled levels for the RoI poolers: the maps named by `featmapNames` among `features` named `featureNames`. */
  namedFeatures(features: tf.Tensor4D[], featureNames: string[]): Map<string, tf.Tensor4D> {
    check(
      features.length === featureNames.length || features.length === this.cfg.featmapNames.length,
      () =>
        `roiHeads: expected ${featureNames.length} levels (${featureNames.join(', ')}) or the ${this.cfg.featmapNames.length} pooled ones, got ${features.length}`,
    );
    const names = features.length === featureNames.length ? featureNames : this.cfg.featmapNames;
    return new Map(features.map((f, i) => [names[i], f]));
  }

  /** RoIAlign 7x7 + TwoMLPHead + FastRCNNPredictor for per-image proposals. */
  boxForward(
    features: tf.Tensor4D[],
    proposals: tf.Tensor2D[],
    imageSizes: ImageSize[],
    featureNames: string[] = [...this.cfg.featmapNames, 'pool'],
  ): { boxFeatures: tf.Tensor4D; classLogits: tf.Tensor2D; boxRegression: tf.Tensor2D } {
    return tf.tidy(() => {
      const boxFeatures = this.boxRoiPool.forward(this.namedFeatures(features, featureNames), proposals, imageSizes);
      const [r] = boxFeatures.shape;
      const flat = tf.reshape(tf.transpose(boxFeatures, [0, 3, 1, 2]), [r, -1]);
      const x = tf.relu(this.fc7.forward(tf.relu(this.fc6.forward(flat))));
      return { boxFeatures, classLogits: this.clsScore.forward(x) as tf.Tensor2D, boxRegression: this.bboxPred.forward(x) as tf.Tensor2D };
    });
  }

  /** Class-specific decoding, clipping, score threshold, small-box removal, class-wise NMS, top detections. */
  postprocessDetections(
    classLogits: tf.Tensor2D,
    boxRegression: tf.Tensor2D,
    proposals: tf.Tensor2D[],
    imageSizes: ImageSize[],
  ): Detections[] {
    const k = this.cfg.numClasses;
    const counts = proposals.map((p) => p.shape[0]);
    check(
      counts.reduce((s, v) => s + v, 0) === classLogits.shape[0],
      () => `roiHeads.postprocessDetections: ${classLogits.shape[0]} logits rows for ${counts.join(' + ')} proposals`,
    );
    let start = 0;
    return proposals.map((p, i) => {
      const n = counts[i];
      const s0 = start;
      start += n;
      const bv = tidyValues(() => {
        const reg = classLogits.shape[0] ? boxRegression.slice([s0, 0], [n, 4 * k]) : boxRegression;
        return clipBoxesToImage(tf.reshape(this.boxCoder.decode(reg as tf.Tensor2D, p), [n * k, 4]) as tf.Tensor2D, imageSizes[i]);
      });
      const sv = tidyValues(() => tf.softmax(classLogits.slice([s0, 0], [n, k])));
      const thresh = Math.fround(this.cfg.boxScoreThresh);
      const cand: number[] = [];
      for (let r = 0; r < n; r++) for (let c = 1; c < k; c++) if (sv[r * k + c] > thresh) cand.push(r * k + c);
      const cb = new Float32Array(cand.length * 4);
      cand.forEach((q, j) => cb.set(bv.subarray(4 * q, 4 * q + 4), 4 * j));
      const big = smallBoxKeep(cb, 1e-2);
      const fb = new Float32Array(big.length * 4);
      big.forEach((q, j) => fb.set(cb.subarray(4 * q, 4 * q + 4), 4 * j));
      const fs = Float32Array.from(big, (q) => sv[cand[q]]);
      const fl = Int32Array.from(big, (q) => cand[q] % k);
      const keep = batchedNmsValues(fb, fs, fl, this.cfg.boxNmsThresh).slice(0, this.cfg.boxDetectionsPerImg);
      const ob = new Float32Array(keep.length * 4);
      keep.forEach((q, j) => ob.set(fb.subarray(4 * q, 4 * q + 4), 4 * j));
      return {
        boxes: tf.tensor2d(ob, [keep.length, 4]),
        scores: tf.tensor1d(Float32Array.from(keep, (q) => fs[q])),
        labels: tf.tensor1d(
          Int32Array.from(keep, (q) => fl[q]),
          'int32',
        ),
      };
    });
  }

  /** RoIAlign 14x14 + MaskRCNNHeads + MaskRCNNPredictor: NHWC mask logits `[R, 2M, 2M, K]`. */
  maskForward(
    features: tf.Tensor4D[],
    boxes: tf.Tensor2D[],
    imageSizes: ImageSize[],
    featureNames: string[] = [...this.cfg.featmapNames, 'pool'],
  ): tf.Tensor4D {
    return tf.tidy(() => {
      let x = this.maskRoiPool.forward(this.namedFeatures(features, featureNames), boxes, imageSizes);
      for (const m of this.maskConvs) x = m.forward(x);
      return this.maskFcnLogits.forward(tf.relu(this.conv5Mask.forward(x)));
    });
  }

  /** Sigmoid of each detection's own class channel: per image `[D, 2M, 2M]`. */
  maskInference(maskLogits: tf.Tensor4D, labels: (tf.Tensor1D | number[])[]): tf.Tensor3D[] {
    const [r, h, w, k] = maskLogits.shape;
    const lab = labels.map((l, i) => intValues(l, `roiHeads.maskInference: labels[${i}]`));
    check(
      lab.reduce((s, l) => s + l.length, 0) === r,
      () => `roiHeads.maskInference: ${r} mask rows for ${lab.map((l) => l.length).join(' + ')} labels`,
    );
    let start = 0;
    return lab.map((l) =>
      tf.tidy(() => {
        const idx = Int32Array.from(l, (c, j) => (start + j) * k + c);
        start += l.length;
        const flat = tf.reshape(tf.transpose(maskLogits, [0, 3, 1, 2]), [r * k, h * w]) as tf.Tensor2D;
        return tf.reshape(tf.sigmoid(rows(flat, idx)), [l.length, h, w]) as tf.Tensor3D;
      }),
    );
  }

  /**
   * Training losses on sampled proposals: cross-entropy over all sampled RoIs, smooth-L1 (beta 1/9) on the
   * positives' gt-class deltas divided by the number of sampled RoIs, and the mask BCE of the positives.
   */
  computeLoss(
    features: tf.Tensor4D[],
    proposals: tf.Tensor2D[],
    imageSizes: ImageSize[],
    targets: DetTarget[],
    opts: { sampledInds?: (tf.Tensor1D | number[])[]; featureNames?: string[] } = {},
  ): { classifier: tf.Scalar; boxReg: tf.Scalar; mask: tf.Scalar } {
    checkTargets(targets, proposals.length, 'roiHeads.computeLoss');
    targets.forEach((t, i) =>
      check(
        t.masks instanceof tf.Tensor && t.masks.rank === 3 && t.masks.shape[0] === t.boxes.shape[0],
        () => `roiHeads.computeLoss: targets[${i}].masks must be [n, H, W] with one mask per box`,
      ),
    );
    const s = this.selectTrainingSamples(proposals, targets, opts);
    const res = tf.tidy(() => {
      const { classLogits, boxRegression } = this.boxForward(features, s.proposals, imageSizes, opts.featureNames);
      const k = this.cfg.numClasses;
      const labels = Int32Array.from(s.labels.flatMap((l) => Array.from(l.dataSync())));
      const n = labels.length;
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, 'int32'), k), classLogits, undefined, 0, tf.Reduction.MEAN);
      const posRows: number[] = [];
      const posCols: number[] = [];
      labels.forEach((l, r) => {
        if (l > 0) {
          posRows.push(r);
          posCols.push(r * k + l);
        }
      });
      const regTargets = tf.concat(s.regressionTargets, 0) as tf.Tensor2D;
      let boxLoss: tf.Tensor = tf.mul(tf.sum(boxRegression), 0);
      if (posRows.length) {
        const pred = rows(tf.reshape(boxRegression, [n * k, 4]) as tf.Tensor2D, posCols);
        boxLoss = tf.div(tf.sum(smoothL1(pred, rows(regTargets, posRows), 1 / 9)), n);
      }
      const maskBoxes: tf.Tensor2D[] = [];
      const maskTargets: tf.Tensor3D[] = [];
      const maskLabels: number[] = [];
      s.labels.forEach((l, i) => {
        const lv = l.dataSync();
        const mv = s.matchedIdxs[i].dataSync();
        const pos = Array.from(lv)
          .map((v, j) => (v > 0 ? j : -1))
          .filter((j) => j >= 0);
        const boxes = rows(s.proposals[i], pos);
        maskBoxes.push(boxes);
        const gl = labelValues(targets[i]);
        const mIdx = pos.map((j) => mv[j]);
        for (const g of mIdx) maskLabels.push(gl[g]);
        if (pos.length) maskTargets.push(projectMasksOnBoxes(targets[i].masks!, boxes, mIdx, 2 * this.cfg.maskRoiOutputSize));
      });
      let maskLoss: tf.Tensor;
      if (maskLabels.length === 0) maskLoss = tf.mul(tf.sum(classLogits), 0);
      else {
        const logits = this.maskForward(features, maskBoxes, imageSizes, opts.featureNames);
        const [r, h, w] = logits.shape;
        const sel = rows(
          tf.reshape(tf.transpose(logits, [0, 3, 1, 2]), [r * k, h * w]) as tf.Tensor2D,
          maskLabels.map((c, j) => j * k + c),
        );
        maskLoss = tf.mean(binaryCrossEntropyWithLogits(sel, tf.reshape(tf.concat(maskTargets, 0), [r, h * w])));
      }
      return { classifier: ce as tf.Scalar, boxReg: boxLoss as tf.Scalar, mask: maskLoss as tf.Scalar };
    });
    tf.dispose([...s.proposals, ...s.matchedIdxs, ...s.labels, ...s.regressionTargets]);
    return res;
  }
}
