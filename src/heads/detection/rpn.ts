import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { AnchorGenerator } from '../../layers/detection/anchors.js';
import { smallBoxKeep } from '../../layers/detection/boxes.js';
import { BoxCoder } from '../../layers/detection/boxCoder.js';
import { binaryCrossEntropyWithLogits, smoothL1 } from '../../layers/detection/detectionLosses.js';
import { Matcher } from '../../layers/detection/matcher.js';
import { batchedNmsValues } from '../../layers/detection/nms.js';
import { floatValues, intValues, tidyValues } from '../../layers/detection/util.js';
import { Conv2d } from '../../layers/conv2d.js';
import { Module } from '../../layers/module.js';
import { checkLevels, checkTargets, DetTarget, featureSizesOf, headConv, ImageSize, PadOptions, resolvePaddedSize } from './common.js';
import { matchAnchorValues, rows } from './denseLoss.js';
import { samplePositiveNegative } from './sampler.js';
import { Container, ConvTower, flattenLevels } from './towers.js';

const f = Math.fround;

/** Settings of the {@link RegionProposalNetwork}. */
export interface RpnConfig {
  inChannels: number;
  anchorSizes: number[][];
  aspectRatios: number[][];
  convDepth: number;
  preNmsTopNTrain: number;
  preNmsTopNTest: number;
  postNmsTopNTrain: number;
  postNmsTopNTest: number;
  nmsThresh: number;
  fgIouThresh: number;
  bgIouThresh: number;
  batchSizePerImage: number;
  positiveFraction: number;
  scoreThresh: number;
}

/** RPN outputs: `[B, A]` objectness logits and `[B, A, 4]` deltas, anchors ordered level, row, column, anchor. */
export interface RpnOutputs {
  objectness: tf.Tensor2D;
  bboxDeltas: tf.Tensor3D;
}

/**
 * Region Proposal Network (Ren et al. 2015, sec. 3.1; torchvision `RPNHead` + `RegionProposalNetwork`):
 * a shared 3x3 conv, 1x1 objectness and box-delta convs, per-level pre-NMS top-n, clipping, NMS per
 * level and post-NMS top-n; anchor labels from a (0.7, 0.3) matcher and a balanced sampler. Keys `head.*`.
 */
export class RegionProposalNetwork extends Module {
  readonly cfg: RpnConfig;
  readonly anchorGenerator: AnchorGenerator;
  readonly boxCoder = new BoxCoder({ weights: [1, 1, 1, 1] });
  readonly proposalMatcher: Matcher;
  readonly numAnchors: number;
  private readonly tower: ConvTower;
  private readonly clsLogits: Conv2d;
  private readonly bboxPred: Conv2d;

  constructor(cfg: RpnConfig) {
    super();
    this.cfg = cfg;
    this.config = { ...cfg };
    this.anchorGenerator = new AnchorGenerator({ sizes: cfg.anchorSizes, aspectRatios: cfg.aspectRatios });
    const apl = this.anchorGenerator.numAnchorsPerLocation();
    check(
      apl.every((a) => a === apl[0]),
      () => `rpn: every level needs the same number of anchors per location, got ${JSON.stringify(apl)}`,
    );
    this.numAnchors = apl[0];
    this.proposalMatcher = new Matcher({ highThreshold: cfg.fgIouThresh, lowThreshold: cfg.bgIouThresh, allowLowQualityMatches: true });
    const head = this.addModule('head', new Container());
    this.tower = head.add('conv', new ConvTower(cfg.inChannels, cfg.convDepth, null));
    this.clsLogits = head.add('cls_logits', headConv(cfg.inChannels, this.numAnchors, { k: 1 }));
    this.bboxPred = head.add('bbox_pred', headConv(cfg.inChannels, this.numAnchors * 4, { k: 1 }));
  }

  /** Objectness logits and box deltas of every anchor. */
  forward(features: tf.Tensor4D[]): RpnOutputs {
    checkLevels(features, this.cfg.inChannels, 'rpn.forward');
    check(
      features.length === this.cfg.anchorSizes.length,
      () => `rpn.forward: ${features.length} levels for ${this.cfg.anchorSizes.length} anchor levels`,
    );
    return tf.tidy(() => {
      const t = features.map((x) => this.tower.forward(x));
      const obj = flattenLevels(
        t.map((x) => this.clsLogits.forward(x)),
        1,
      );
      return {
        objectness: tf.reshape(obj, [obj.shape[0], obj.shape[1]]) as tf.Tensor2D,
        bboxDeltas: flattenLevels(
          t.map((x) => this.bboxPred.forward(x)),
          4,
        ),
      };
    });
  }

  /** `[A, 4]` anchors for the levels of a padded batch. */
  anchors(features: tf.Tensor4D[] | ImageSize[], imageSizes: ImageSize[], opts: PadOptions = {}): tf.Tensor2D {
    return this.anchorGenerator.anchors(featureSizesOf(features), resolvePaddedSize(imageSizes, opts));
  }

  /** Proposals per image (torchvision `filter_proposals`); `training` selects the training top-n values. */
  filterProposals(
    objectness: tf.Tensor2D,
    bboxDeltas: tf.Tensor3D,
    anchors: tf.Tensor2D,
    imageSizes: ImageSize[],
    featureSizes: ImageSize[],
    opts: { training?: boolean } = {},
  ): { boxes: tf.Tensor2D[]; scores: tf.Tensor1D[] } {
    const [b, a] = objectness.shape;
    const counts = featureSizes.map(([h, w]) => h * w * this.numAnchors);
    check(
      counts.reduce((s, v) => s + v, 0) === a,
      () => `rpn.filterProposals: feature sizes ${JSON.stringify(featureSizes)} do not give the ${a} anchors`,
    );
    check(imageSizes.length === b, () => `rpn.filterProposals: ${imageSizes.length} image sizes for a batch of ${b}`);
    const pre = opts.training ? this.cfg.preNmsTopNTrain : this.cfg.preNmsTopNTest;
    const post = opts.training ? this.cfg.postNmsTopNTrain : this.cfg.postNmsTopNTest;
    const obj = floatValues(objectness);
    const boxesOut: tf.Tensor2D[] = [];
    const scoresOut: tf.Tensor1D[] = [];
    for (let i = 0; i < b; i++) {
      const sel: number[] = [];
      const lvl: number[] = [];
      let start = 0;
      counts.forEach((n, l) => {
        const idx = Array.from({ length: n }, (_, k) => start + k);
        idx.sort((p, q) => obj[i * a + q] - obj[i * a + p] || p - q);
        for (const k of idx.slice(0, Math.min(pre, n))) {
          sel.push(k);
          lvl.push(l);
        }
        start += n;
      });
      const [h, w] = imageSizes[i];
      const dec = tidyValues(() =>
        this.boxCoder.decode(rows(tf.reshape(bboxDeltas.slice([i, 0, 0], [1, a, 4]), [a, 4]) as tf.Tensor2D, sel), rows(anchors, sel)),
      );
      for (let k = 0; k < dec.length; k += 4) {
        dec[k] = Math.min(Math.max(dec[k], 0), w);
        dec[k + 1] = Math.min(Math.max(dec[k + 1], 0), h);
        dec[k + 2] = Math.min(Math.max(dec[k + 2], 0), w);
        dec[k + 3] = Math.min(Math.max(dec[k + 3], 0), h);
      }
      const prob = sel.map((k) => f(1 / (1 + Math.exp(-obj[i * a + k]))));
      const thresh = f(this.cfg.scoreThresh);
      const keep = smallBoxKeep(dec, 1e-3).filter((k) => prob[k] >= thresh);
      const kb = new Float32Array(keep.length * 4);
      keep.forEach((k, j) => kb.set(dec.subarray(4 * k, 4 * k + 4), 4 * j));
      const ks = Float32Array.from(keep, (k) => prob[k]);
      const kl = Int32Array.from(keep, (k) => lvl[k]);
      const nmsKeep = batchedNmsValues(kb, ks, kl, this.cfg.nmsThresh).slice(0, post);
      const ob = new Float32Array(nmsKeep.length * 4);
      nmsKeep.forEach((k, j) => ob.set(kb.subarray(4 * k, 4 * k + 4), 4 * j));
      boxesOut.push(tf.tensor2d(ob, [nmsKeep.length, 4]));
      scoresOut.push(tf.tensor1d(Float32Array.from(nmsKeep, (k) => ks[k])));
    }
    return { boxes: boxesOut, scores: scoresOut };
  }

  /** Anchor labels (1 fg, 0 bg, -1 ignored, float) and the matched gt box of every anchor, per image. */
  assignTargets(anchors: tf.Tensor2D, targets: DetTarget[]): { labels: tf.Tensor1D[]; matchedGtBoxes: tf.Tensor2D[] } {
    checkTargets(targets, targets.length, 'rpn.assignTargets');
    const matched = matchAnchorValues(this.proposalMatcher, anchors, targets);
    const labels = matched.map((m) => tf.tensor1d(Float32Array.from(m, (v) => (v >= 0 ? 1 : v === -1 ? 0 : -1))));
    const matchedGtBoxes = targets.map((t, i) =>
      t.boxes.shape[0] === 0
        ? (tf.zeros([anchors.shape[0], 4]) as tf.Tensor2D)
        : tf.tidy(() =>
            rows(
              t.boxes,
              Array.from(matched[i], (v) => Math.max(v, 0)),
            ),
          ),
    );
    return { labels, matchedGtBoxes };
  }

  /**
   * Objectness BCE (mean over the sampled anchors) and smooth-L1 (beta 1/9) box loss over the sampled
   * positives divided by the number of sampled anchors; `sampledPos` / `sampledNeg` (per image anchor
   * indices) replace the random sampler.
   */
  computeLoss(
    objectness: tf.Tensor2D,
    bboxDeltas: tf.Tensor3D,
    anchors: tf.Tensor2D,
    targets: DetTarget[],
    opts: { sampledPos?: (tf.Tensor1D | number[])[]; sampledNeg?: (tf.Tensor1D | number[])[] } = {},
  ): { objectness: tf.Scalar; boxReg: tf.Scalar } {
    const [b, a] = objectness.shape;
    checkTargets(targets, b, 'rpn.computeLoss');
    const matched = matchAnchorValues(this.proposalMatcher, anchors, targets);
    const pos: number[] = [];
    const neg: number[] = [];
    const posGt: tf.Tensor2D[] = [];
    const posAnchor: number[] = [];
    return tf.tidy(() => {
      matched.forEach((m, i) => {
        const labels = Float32Array.from(m, (v) => (v >= 0 ? 1 : v === -1 ? 0 : -1));
        let p: number[];
        let n: number[];
        if (opts.sampledPos && opts.sampledNeg) {
          p = Array.from(intValues(opts.sampledPos[i], `rpn.computeLoss: sampledPos[${i}]`));
          n = Array.from(intValues(opts.sampledNeg[i], `rpn.computeLoss: sampledNeg[${i}]`));
          check(
            p.every((k) => k >= 0 && k < a) && n.every((k) => k >= 0 && k < a),
            () => `rpn.computeLoss: sampled anchor indices of image ${i} must lie in [0, ${a})`,
          );
        } else ({ pos: p, neg: n } = samplePositiveNegative(labels, this.cfg.batchSizePerImage, this.cfg.positiveFraction));
        for (const k of p) pos.push(i * a + k);
        for (const k of n) neg.push(i * a + k);
        for (const k of p) posAnchor.push(k);
        if (p.length)
          posGt.push(
            rows(
              targets[i].boxes,
              p.map((k) => Math.max(m[k], 0)),
            ),
          );
      });
      const all = [...pos, ...neg];
      const lab = Float32Array.from(all, (_, j) => (j < pos.length ? 1 : 0));
      const logits = rows(tf.reshape(objectness, [b * a, 1]) as tf.Tensor2D, all).reshape([-1]);
      const objLoss = all.length ? tf.mean(binaryCrossEntropyWithLogits(logits, tf.tensor1d(lab))) : tf.mul(tf.sum(objectness), 0);
      let boxLoss: tf.Tensor;
      if (pos.length) {
        const target = this.boxCoder.encode(tf.concat(posGt, 0) as tf.Tensor2D, rows(anchors, posAnchor));
        const pred = rows(tf.reshape(bboxDeltas, [b * a, 4]) as tf.Tensor2D, pos);
        boxLoss = tf.div(tf.sum(smoothL1(pred, target, 1 / 9)), all.length);
      } else boxLoss = tf.mul(tf.sum(bboxDeltas), 0);
      return { objectness: objLoss as tf.Scalar, boxReg: boxLoss as tf.Scalar };
    });
  }
}
