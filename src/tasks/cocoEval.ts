import { check } from '../errors.js';

/** Ground truth of one image for {@link cocoEvaluate}: boxes `(x1, y1, x2, y2)`, category ids, optional crowd flags and areas. */
export interface CocoGroundTruth {
  boxes: number[][];
  labels: number[];
  iscrowd?: boolean[];
  /** COCO's `area` field; default the box area (the mask area for `iouType: 'segm'`). */
  areas?: number[];
  /** Instance masks for `iouType: 'segm'`: per object `H * W` values of the image, foreground where >= 0.5. */
  masks?: ArrayLike<number>[];
}

/** Detections of one image for {@link cocoEvaluate}. */
export interface CocoDetections {
  boxes: number[][];
  scores: number[];
  labels: number[];
  /** Predicted masks for `iouType: 'segm'` (probabilities or 0/1), binarised at 0.5 as torchvision's COCO evaluation does. */
  masks?: ArrayLike<number>[];
}

/** Options of {@link cocoEvaluate}. */
export interface CocoEvalOptions {
  /** Categories to evaluate (default: those of the ground truth). */
  categories?: number[];
  /** 'bbox' (default): box IoU; 'segm': mask IoU (pixel counts of the binarised masks) and mask areas. */
  iouType?: 'bbox' | 'segm';
}

/** The twelve numbers of pycocotools' `COCOeval.summarize()` for bounding boxes (-1 where undefined). */
export interface CocoStats {
  AP: number;
  AP50: number;
  AP75: number;
  APs: number;
  APm: number;
  APl: number;
  AR1: number;
  AR10: number;
  AR100: number;
  ARs: number;
  ARm: number;
  ARl: number;
}

/** numpy's `linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`. */
function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

const IOU_THRS = linspace(0.5, 0.95, 10);
const REC_THRS = linspace(0, 1, 101);
const AREA_RNG: [number, number][] = [
  [0, 1e10],
  [0, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e10],
];
const MAX_DETS = [1, 10, 100];

const area = (b: number[]) => (b[2] - b[0]) * (b[3] - b[1]);

function iou(d: number[], g: number[], crowd: boolean): number {
  const w = Math.min(d[2], g[2]) - Math.max(d[0], g[0]);
  const h = Math.min(d[3], g[3]) - Math.max(d[1], g[1]);
  if (w <= 0 || h <= 0) return 0;
  const i = w * h;
  const u = crowd ? area(d) : area(d) + area(g) - i;
  return i / u;
}

/** A binarised mask (foreground where >= 0.5) and its pixel count. */
interface BinMask {
  on: Uint8Array;
  area: number;
}

function binarise(m: ArrayLike<number>): BinMask {
  const on = new Uint8Array(m.length);
  let a = 0;
  for (let i = 0; i < m.length; i++) {
    if (m[i] < 0.5) continue;
    on[i] = 1;
    a++;
  }
  return { on, area: a };
}

/** pycocotools' mask IoU (`maskUtils.iou` on RLEs): intersection over union, or over the detection's area for a crowd region. */
function maskIou(d: BinMask, g: BinMask, crowd: boolean): number {
  check(d.on.length === g.on.length, () => `cocoEvaluate: a detection mask has ${d.on.length} pixels, its ground truth ${g.on.length}`);
  let i = 0;
  for (let p = 0; p < d.on.length; p++) i += d.on[p] & g.on[p];
  const u = crowd ? d.area : d.area + g.area - i;
  return u > 0 ? i / u : 0;
}

interface ImgEval {
  dtScores: number[];
  dtMatched: boolean[][];
  dtIgnore: boolean[][];
  numGt: number;
}

/** pycocotools `evaluateImg` for one image, category and area range (detections already sorted and cut). */
function evaluateImg(
  gts: { box: number[]; crowd: boolean; area: number; mask?: BinMask }[],
  dts: { box: number[]; score: number; mask?: BinMask }[],
  rng: [number, number],
): ImgEval | null {
  if (gts.length === 0 && dts.length === 0) return null;
  const ig = gts.map((g) => g.crowd || g.area < rng[0] || g.area > rng[1]);
  const order = gts.map((_, i) => i).sort((a, b) => Number(ig[a]) - Number(ig[b]) || a - b);
  const g = order.map((i) => gts[i]);
  const gIg = order.map((i) => ig[i]);
  const ious = dts.map((d) => g.map((gg) => (d.mask && gg.mask ? maskIou(d.mask, gg.mask, gg.crowd) : iou(d.box, gg.box, gg.crowd))));
  const T = IOU_THRS.length;
  const gtm = Array.from({ length: T }, () => new Array(g.length).fill(false));
  const dtm = Array.from({ length: T }, () => new Array(dts.length).fill(false));
  const dtIg = Array.from({ length: T }, () => new Array(dts.length).fill(false));
  IOU_THRS.forEach((t, ti) => {
    dts.forEach((_, di) => {
      let best = Math.min(t, 1 - 1e-10);
      let m = -1;
      for (let gi = 0; gi < g.length; gi++) {
        if (gtm[ti][gi] && !g[gi].crowd) continue;
        if (m > -1 && !gIg[m] && gIg[gi]) break;
        if (ious[di][gi] < best) continue;
        best = ious[di][gi];
        m = gi;
      }
      if (m === -1) return;
      dtIg[ti][di] = gIg[m];
      dtm[ti][di] = true;
      gtm[ti][m] = true;
    });
  });
  dts.forEach((d, di) => {
    const a = d.mask ? d.mask.area : area(d.box);
    const out = a < rng[0] || a > rng[1];
    for (let ti = 0; ti < T; ti++) if (!dtm[ti][di] && out) dtIg[ti][di] = true;
  });
  return { dtScores: dts.map((d) => d.score), dtMatched: dtm, dtIgnore: dtIg, numGt: gIg.filter((v) => !v).length };
}

/** Stable argsort by decreasing value (numpy's mergesort of the negated scores). */
function argsortDesc(v: number[]): number[] {
  return v.map((_, i) => i).sort((a, b) => v[b] - v[a] || a - b);
}

/**
 * COCO evaluation exactly as pycocotools' `COCOeval` (`evaluate`, `accumulate`, `summarize`) for boxes
 * (`iouType: 'bbox'`, default) or instance masks (`'segm'`): IoU thresholds 0.50:0.05:0.95, 101-point
 * interpolated precision, area ranges all / small (< 32^2) / medium / large (> 96^2), max detections
 * 1 / 10 / 100, crowd ground truth matched but ignored. The categories are those of the ground truth
 * (or `categories`).
 */
export function cocoEvaluate(groundTruth: CocoGroundTruth[], detections: CocoDetections[], opts: CocoEvalOptions = {}): CocoStats {
  check(
    groundTruth.length === detections.length,
    () => `cocoEvaluate: ${groundTruth.length} ground-truth images vs ${detections.length} detection lists`,
  );
  const segm = (opts.iouType ?? 'bbox') === 'segm';
  check(
    opts.iouType === undefined || opts.iouType === 'bbox' || segm,
    () => `cocoEvaluate: iouType '${opts.iouType}': expected 'bbox' or 'segm'`,
  );
  const gtMasks: (BinMask[] | null)[] = groundTruth.map((g, i) => {
    if (!segm) return null;
    check(g.masks?.length === g.boxes.length, () => `cocoEvaluate (segm): image ${i} needs one ground-truth mask per box`);
    return g.masks!.map(binarise);
  });
  const dtMasks: (BinMask[] | null)[] = detections.map((d, i) => {
    if (!segm) return null;
    check(d.masks?.length === d.boxes.length, () => `cocoEvaluate (segm): image ${i} needs one detection mask per box`);
    return d.masks!.map(binarise);
  });
  const cats = opts.categories ?? [...new Set(groundTruth.flatMap((g) => g.labels))].sort((a, b) => a - b);
  const T = IOU_THRS.length;
  const R = REC_THRS.length;
  // precision[t][r][k][a][m], recall[t][k][a][m]
  const prec: number[][][][][] = IOU_THRS.map(() => REC_THRS.map(() => cats.map(() => AREA_RNG.map(() => MAX_DETS.map(() => -1)))));
  const rec: number[][][][] = IOU_THRS.map(() => cats.map(() => AREA_RNG.map(() => MAX_DETS.map(() => -1))));
  cats.forEach((cat, k) => {
    AREA_RNG.forEach((rng, a) => {
      const evals: ImgEval[] = [];
      groundTruth.forEach((gt, img) => {
        check(
          gt.boxes.length === gt.labels.length,
          () => `cocoEvaluate: image ${img} has ${gt.boxes.length} boxes but ${gt.labels.length} labels`,
        );
        const gm = gtMasks[img];
        const gts = gt.boxes
          .map((box, i) => ({
            box,
            crowd: gt.iscrowd?.[i] ?? false,
            area: gt.areas?.[i] ?? (gm ? gm[i].area : area(box)),
            label: gt.labels[i],
            ...(gm ? { mask: gm[i] } : {}),
          }))
          .filter((g) => g.label === cat);
        const det = detections[img];
        const dm = dtMasks[img];
        const dAll = det.boxes
          .map((box, i) => ({ box, score: det.scores[i], label: det.labels[i], ...(dm ? { mask: dm[i] } : {}) }))
          .filter((d) => d.label === cat);
        const dts = argsortDesc(dAll.map((d) => d.score))
          .map((i) => dAll[i])
          .slice(0, MAX_DETS[MAX_DETS.length - 1]);
        const e = evaluateImg(gts, dts, rng);
        if (e) evals.push(e);
      });
      if (!evals.length) return;
      MAX_DETS.forEach((maxDet, m) => {
        const scores: number[] = [];
        const matched: boolean[][] = IOU_THRS.map(() => []);
        const ignored: boolean[][] = IOU_THRS.map(() => []);
        for (const e of evals) {
          const n = Math.min(maxDet, e.dtScores.length);
          scores.push(...e.dtScores.slice(0, n));
          for (let t = 0; t < T; t++) {
            matched[t].push(...e.dtMatched[t].slice(0, n));
            ignored[t].push(...e.dtIgnore[t].slice(0, n));
          }
        }
        const npig = evals.reduce((s, e) => s + e.numGt, 0);
        if (npig === 0) return;
        const inds = argsortDesc(scores);
        for (let t = 0; t < T; t++) {
          let tp = 0;
          let fp = 0;
          const rc: number[] = [];
          const pr: number[] = [];
          for (const i of inds) {
            if (ignored[t][i]) continue;
            if (matched[t][i]) tp++;
            else fp++;
            rc.push(tp / npig);
            pr.push(tp / (fp + tp + 2.220446049250313e-16));
          }
          rec[t][k][a][m] = rc.length ? rc[rc.length - 1] : 0;
          for (let i = pr.length - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          let j = 0;
          for (let r = 0; r < R; r++) {
            while (j < rc.length && rc[j] < REC_THRS[r]) j++;
            prec[t][r][k][a][m] = j < rc.length ? pr[j] : 0;
          }
        }
      });
    });
  });
  const mean = (v: number[]) => {
    const ok = v.filter((x) => x > -1);
    return ok.length ? ok.reduce((s, x) => s + x, 0) / ok.length : -1;
  };
  const ap = (t: number | null, a: number, m: number) =>
    mean(
      IOU_THRS.flatMap((_, ti) => (t === null || ti === t ? REC_THRS.flatMap((_, r) => cats.map((__, k) => prec[ti][r][k][a][m])) : [])),
    );
  const ar = (a: number, m: number) => mean(IOU_THRS.flatMap((_, ti) => cats.map((__, k) => rec[ti][k][a][m])));
  return {
    AP: ap(null, 0, 2),
    AP50: ap(0, 0, 2),
    AP75: ap(5, 0, 2),
    APs: ap(null, 1, 2),
    APm: ap(null, 2, 2),
    APl: ap(null, 3, 2),
    AR1: ar(0, 0),
    AR10: ar(0, 1),
    AR100: ar(0, 2),
    ARs: ar(1, 2),
    ARm: ar(2, 2),
    ARl: ar(3, 2),
  };
}
