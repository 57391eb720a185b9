import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { AnchorGenerator } from '../../layers/detection/anchors.js';
import { BoxLinearCoder } from '../../layers/detection/boxCoder.js';
import { binaryCrossEntropyWithLogits, generalizedBoxIouLoss, sigmoidFocalLoss } from '../../layers/detection/detectionLosses.js';
import { floatValues, int32Tensor, tidyValues } from '../../layers/detection/util.js';
import { Conv2d } from '../../layers/conv2d.js';
import { Module } from '../../layers/module.js';
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
  resolvePaddedSize,
  tidyDetections,
} from './common.js';
import { rows } from './denseLoss.js';
import { Container, FlatGnTower, flatGnTowerOf, flattenLevels } from './towers.js';

const f = Math.fround;

/** Configuration of {@link fcos} (torchvision `FCOS` / `FCOSHead` arguments, camelCase). */
export interface FcosConfig {
  numClasses: number;
  inChannels: number;
  numConvs?: number;
  /** One square anchor per location and level, its size = the level's nominal stride. */
  anchorSizes?: number[];
  centerSamplingRadius?: number;
  scoreThresh?: number;
  nmsThresh?: number;
  detectionsPerImg?: number;
  topkCandidates?: number;
}

/** Dense FCOS outputs `[B, A, K]`, `[B, A, 4]` (ReLU'd ltrb), `[B, A, 1]` (centerness logits). */
export interface FcosOutputs {
  clsLogits: tf.Tensor3D;
  bboxRegression: tf.Tensor3D;
  bboxCtrness: tf.Tensor3D;
}

/** FCOS losses (scalars). */
export interface FcosLosses {
  classification: tf.Scalar;
  bboxRegression: tf.Scalar;
  bboxCtrness: tf.Scalar;
}

/**
 * FCOS (Tian et al. 2019): per-location classification, ltrb regression and centerness on every level,
 * center sampling, focal + GIoU + centerness losses, per-level top-k and class-wise NMS; torchvision's
 * `FCOSHead` + `FCOS.compute_loss` / `postprocess_detections` (GroupNorm with 32 groups, ReLU on the
 * regression, no per-level scale). State-dict keys `head.classification_head.*`, `head.regression_head.*`.
 */
export class FcosHead extends Module {
  readonly cfg: Required<FcosConfig>;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder = new BoxLinearCoder({ normalizeBySize: true });
  private readonly clsTower: FlatGnTower;
  private readonly regTower: FlatGnTower;
  private readonly clsLogits: Conv2d;
  private readonly bboxReg: Conv2d;
  private readonly bboxCtrness: Conv2d;

  constructor(config: FcosConfig) {
    super();
    check(
      Number.isInteger(config?.numClasses) && config.numClasses > 0,
      () => `fcos: numClasses must be a positive integer, got ${config?.numClasses}`,
    );
    check(
      Number.isInteger(config.inChannels) && config.inChannels > 0 && config.inChannels % 32 === 0,
      () => `fcos: inChannels must be a positive multiple of 32 (GroupNorm(32)), got ${config.inChannels}`,
    );
    const c: Required<FcosConfig> = {
      numConvs: 4,
      anchorSizes: [8, 16, 32, 64, 128],
      centerSamplingRadius: 1.5,
      scoreThresh: 0.2,
      nmsThresh: 0.6,
      detectionsPerImg: 100,
      topkCandidates: 1000,
      ...config,
    };
    this.cfg = c;
    this.config = { ...c };
    this.anchorGenerator = new AnchorGenerator({ sizes: c.anchorSizes.map((s) => [s]), aspectRatios: c.anchorSizes.map(() => [1]) });
    const ch = c.inChannels;
    const head = this.addModule('head', new Container());
    const cls = head.add('classification_head', new Container());
    const reg = head.add('regression_head', new Container());
    this.clsTower = cls.add('conv', flatGnTowerOf(ch, c.numConvs, 32));
    this.clsLogits = cls.add('cls_logits', headConv(ch, c.numClasses, { biasValue: -Math.log((1 - 0.01) / 0.01) }));
    this.regTower = reg.add('conv', flatGnTowerOf(ch, c.numConvs, 32));
    this.bboxReg = reg.add('bbox_reg', headConv(ch, 4));
    this.bboxCtrness = reg.add('bbox_ctrness', headConv(ch, 1));
  }

  /** Dense outputs for NHWC levels (finest first). */
  forward(features: tf.Tensor4D[]): FcosOutputs {
    checkLevels(features, this.cfg.inChannels, 'fcos.forward');
    check(
      features.length === this.cfg.anchorSizes.length,
      () => `fcos.forward: ${features.length} levels for ${this.cfg.anchorSizes.length} anchor sizes`,
    );
    return tf.tidy(() => {
      const regFeats = features.map((x) => this.regTower.forward(x));
      return {
        clsLogits: flattenLevels(
          features.map((x) => this.clsLogits.forward(this.clsTower.forward(x))),
          this.cfg.numClasses,
        ),
        bboxRegression: flattenLevels(
          regFeats.map((x) => tf.relu(this.bboxReg.forward(x)) as tf.Tensor4D),
          4,
        ),
        bboxCtrness: flattenLevels(
          regFeats.map((x) => this.bboxCtrness.forward(x)),
          1,
        ),
      };
    });
  }

  /** `[A, 4]` anchors (one per location and level). */
  anchors(features: tf.Tensor4D[] | ImageSize[], imageSizes: ImageSize[], opts: PadOptions = {}): tf.Tensor2D {
    return this.anchorGenerator.anchors(featureSizesOf(features), resolvePaddedSize(imageSizes, opts));
  }

  /** Per image the matched gt of each anchor (center sampling, inside box, scale range, smallest area) or -1. */
  matchValues(anchors: tf.Tensor2D, targets: DetTarget[], featureSizes: ImageSize[]): Int32Array[] {
    const av = floatValues(anchors);
    const n = anchors.shape[0];
    const first = featureSizes[0][0] * featureSizes[0][1];
    const lastN = featureSizes[featureSizes.length - 1][0] * featureSizes[featureSizes.length - 1][1];
    check(
      featureSizes.reduce((s, [h, w]) => s + h * w, 0) === n,
      () => `fcos: feature sizes ${JSON.stringify(featureSizes)} do not give the ${n} anchors`,
    );
    const radius = f(this.cfg.centerSamplingRadius);
    return targets.map((t) => {
      const m = new Int32Array(n).fill(-1);
      const g = t.boxes.shape[0];
      if (g === 0) return m;
      const gb = floatValues(t.boxes);
      const gcx = new Float32Array(g);
      const gcy = new Float32Array(g);
      const score = new Float32Array(g);
      for (let j = 0; j < g; j++) {
        gcx[j] = f(f(gb[4 * j] + gb[4 * j + 2]) / 2);
        gcy[j] = f(f(gb[4 * j + 1] + gb[4 * j + 3]) / 2);
        score[j] = f(1e8 - f(f(gb[4 * j + 2] - gb[4 * j]) * f(gb[4 * j + 3] - gb[4 * j + 1])));
      }
      for (let i = 0; i < n; i++) {
        const ax = f(f(av[4 * i] + av[4 * i + 2]) / 2);
        const ay = f(f(av[4 * i + 1] + av[4 * i + 3]) / 2);
        const size = f(av[4 * i + 2] - av[4 * i]);
        const lower = i < first ? 0 : f(size * 4);
        const upper = i >= n - lastN ? Infinity : f(size * 8);
        const rad = f(radius * size);
        let best = -1;
        let bv = 0;
        for (let j = 0; j < g; j++) {
          if (!(Math.max(Math.abs(f(ax - gcx[j])), Math.abs(f(ay - gcy[j]))) < rad)) continue;
          const l = f(ax - gb[4 * j]);
          const tt = f(ay - gb[4 * j + 1]);
          const r = f(gb[4 * j + 2] - ax);
          const b = f(gb[4 * j + 3] - ay);
          if (!(Math.min(l, tt, r, b) > 0)) continue;
          const mx = Math.max(l, tt, r, b);
          if (!(mx > lower && mx < upper)) continue;
          if (score[j] > bv) {
            bv = score[j];
            best = j;
          }
        }
        if (best >= 0 && bv >= 1e-5) m[i] = best;
      }
      return m;
    });
  }

  /** int32 matched gt index per anchor and image (-1 = background). */
  matchAnchors(anchors: tf.Tensor2D, targets: DetTarget[], featureSizes: ImageSize[]): tf.Tensor1D[] {
    checkTargets(targets, targets.length, 'fcos.matchAnchors');
    return this.matchValues(anchors, targets, featureSizes).map((m) => int32Tensor(m));
  }

  /** Focal, GIoU and centerness losses, each divided by the number of foreground anchors of the whole batch. */
  computeLoss(outputs: FcosOutputs, anchors: tf.Tensor2D, targets: DetTarget[], featureSizes: ImageSize[]): FcosLosses {
    const [b, a, k] = outputs.clsLogits.shape;
    checkTargets(targets, b, 'fcos.computeLoss');
    const matched = this.matchValues(anchors, targets, featureSizes);
    return tf.tidy(() => {
      const onehot = new Float32Array(b * a * k);
      const fgRows: number[] = [];
      const fgAnchors: number[] = [];
      const gtRows: tf.Tensor2D[] = [];
      targets.forEach((t, i) => {
        const labels = labelValues(t);
        const m = matched[i];
        const idx: number[] = [];
        for (let j = 0; j < a; j++) {
          if (m[j] < 0) continue;
          const l = labels[m[j]];
          check(l >= 0 && l < k, () => `fcos: label ${l} of image ${i} outside [0, ${k})`);
          onehot[(i * a + j) * k + l] = 1;
          fgRows.push(i * a + j);
          fgAnchors.push(j);
          idx.push(m[j]);
        }
        if (idx.length) gtRows.push(rows(t.boxes, idx));
      });
      const nfg = Math.max(1, fgRows.length);
      const cls = tf.div(tf.sum(sigmoidFocalLoss(outputs.clsLogits, tf.tensor3d(onehot, [b, a, k]))), nfg) as tf.Scalar;
      if (fgRows.length === 0) {
        const zero = (t: tf.Tensor) => tf.mul(tf.sum(t), 0) as tf.Scalar;
        return { classification: cls, bboxRegression: zero(outputs.bboxRegression), bboxCtrness: zero(outputs.bboxCtrness) };
      }
      const gt = tf.concat(gtRows, 0) as tf.Tensor2D;
      const anc = rows(anchors, fgAnchors);
      const reg = rows(tf.reshape(outputs.bboxRegression, [b * a, 4]) as tf.Tensor2D, fgRows);
      const ctr = tf.reshape(rows(tf.reshape(outputs.bboxCtrness, [b * a, 1]) as tf.Tensor2D, fgRows), [-1]);
      const giou = tf.div(tf.sum(generalizedBoxIouLoss(this.boxCoder.decode(reg, anc), gt)), nfg) as tf.Scalar;
      const target = this.ctrnessTargetsOf(anc, gt);
      const ctrLoss = tf.div(tf.sum(binaryCrossEntropyWithLogits(ctr, target)), nfg) as tf.Scalar;
      return { classification: cls, bboxRegression: giou, bboxCtrness: ctrLoss };
    });
  }

  /** `sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))` of the gt boxes around the anchor centres (FCOS eq. 3). */
  ctrnessTargetsOf(anchors: tf.Tensor2D, gt: tf.Tensor2D): tf.Tensor1D {
    return tf.tidy(() => {
      const [l, t, r, b] = tf.unstack(this.boxCoder.encode(anchors, gt), 1);
      return tf.sqrt(tf.mul(tf.div(tf.minimum(l, r), tf.maximum(l, r)), tf.div(tf.minimum(t, b), tf.maximum(t, b)))) as tf.Tensor1D;
    });
  }

  /** Centerness targets of the foreground anchors of each image, in anchor order. */
  ctrnessTargets(anchors: tf.Tensor2D, targets: DetTarget[], featureSizes: ImageSize[]): tf.Tensor1D[] {
    const matched = this.matchValues(anchors, targets, featureSizes);
    return targets.map((t, i) =>
      tf.tidy(() => {
        const fg: number[] = [];
        const gi: number[] = [];
        matched[i].forEach((v, j) => {
          if (v >= 0) {
            fg.push(j);
            gi.push(v);
          }
        });
        return fg.length ? this.ctrnessTargetsOf(rows(anchors, fg), rows(t.boxes, gi)) : tf.zeros([0]);
      }),
    ) as tf.Tensor1D[];
  }

  /** forward + anchors + {@link computeLoss}. */
  loss(features: tf.Tensor4D[], targets: DetTarget[], imageSizes: ImageSize[], opts: PadOptions = {}): FcosLosses {
    checkImageSizes(imageSizes, features[0]?.shape[0]);
    return tf.tidy(() => {
      const out = this.forward(features);
      const anchors = this.anchors(features, imageSizes, opts);
      return { ...this.computeLoss(out, anchors, targets, featureSizesOf(features)) };
    });
  }

  /** Detections per image with score `sqrt(sigmoid(cls) sigmoid(ctrness))`. */
  postprocess(outputs: FcosOutputs, anchors: tf.Tensor2D, imageSizes: ImageSize[], featureSizes: ImageSize[]): Detections[] {
    const [b, a, k] = outputs.clsLogits.shape;
    checkImageSizes(imageSizes, b);
    const counts = featureSizes.map(([h, w]) => h * w);
    check(
      counts.reduce((s, v) => s + v, 0) === a,
      () => `fcos.postprocess: feature sizes ${JSON.stringify(featureSizes)} do not give the ${a} anchors`,
    );
    return imageSizes.map((size, i) => {
      const scores = tidyValues(() =>
        tf.sqrt(
          tf.mul(tf.sigmoid(outputs.clsLogits.slice([i, 0, 0], [1, a, k])), tf.sigmoid(outputs.bboxCtrness.slice([i, 0, 0], [1, a, 1]))),
        ),
      );
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
    tf.dispose([out.clsLogits, out.bboxRegression, out.bboxCtrness, anchors]);
    return dets;
  }
}

/** Build an {@link FcosHead}. */
export function fcos(config: FcosConfig): FcosHead {
  return new FcosHead(config);
}
