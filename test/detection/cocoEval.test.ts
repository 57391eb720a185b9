import { describe, expect, it } from 'vitest';
import { VisBackbonesError } from '../../src/errors.js';
import { cocoEvaluate } from '../../src/tasks/cocoEval.js';

// Expected values are derived by hand from pycocotools' COCOeval rules (see each comment).
describe('cocoEvaluate (pycocotools COCOeval semantics)', () => {
  it('a perfect detection of a small box', () => {
    // one 10x10 gt (area 100 < 32^2: small), one exact detection: matched at every IoU threshold,
    // precision 1 at every recall point -> AP = AP50 = AP75 = APs = 1; no medium / large gt -> -1.
    const s = cocoEvaluate([{ boxes: [[0, 0, 10, 10]], labels: [1] }], [{ boxes: [[0, 0, 10, 10]], scores: [0.9], labels: [1] }]);
    // (precision is tp / (tp + fp + eps) as in pycocotools, hence "close to" 1)
    const want = { AP: 1, AP50: 1, AP75: 1, APs: 1, APm: -1, APl: -1, AR1: 1, AR10: 1, AR100: 1, ARs: 1, ARm: -1, ARl: -1 };
    for (const [k, v] of Object.entries(want)) expect(s[k as keyof typeof s], k).toBeCloseTo(v, 12);
  });

  it('a false positive ranked above the true positive halves the precision', () => {
    // dets sorted by score: FP (0.9), TP (0.8). cumulative tp = [0, 1], fp = [1, 1] -> recall [0, 1],
    // precision [0, 0.5]; made monotone from the right: [0.5, 0.5]. Every recall threshold 0..1 finds
    // precision 0.5 -> AP = 0.5 at every IoU threshold; recall 1. With maxDets 1 only the FP counts:
    // recall 0 -> AR1 = 0.
    const s = cocoEvaluate(
      [{ boxes: [[0, 0, 40, 40]], labels: [3] }],
      [
        {
          boxes: [
            [100, 100, 140, 140],
            [0, 0, 40, 40],
          ],
          scores: [0.9, 0.8],
          labels: [3, 3],
        },
      ],
    );
    expect(s.AP).toBeCloseTo(0.5, 12);
    expect(s.AP50).toBeCloseTo(0.5, 12);
    expect(s.APm).toBeCloseTo(0.5, 12); // 40x40 = 1600 in [32^2, 96^2]
    expect(s.APs).toBe(-1);
    expect(s.AR1).toBe(0);
    expect(s.AR100).toBe(1);
  });

  it('an IoU of 0.58 matches only at thresholds 0.50 and 0.55', () => {
    // det [0, 0, 10, 5.8] inside gt [0, 0, 10, 10]: IoU = 58 / 100. Matched at t = 0.5, 0.55 (2 of 10
    // thresholds, AP 1 there), unmatched above (AP 0) -> AP = 0.2, AP50 = 1, AP75 = 0, AR100 = 0.2.
    const s = cocoEvaluate([{ boxes: [[0, 0, 10, 10]], labels: [1] }], [{ boxes: [[0, 0, 10, 5.8]], scores: [0.5], labels: [1] }]);
    expect(s.AP).toBeCloseTo(0.2, 12);
    expect(s.AP50).toBeCloseTo(1, 12);
    expect(s.AP75).toBe(0);
    expect(s.AR100).toBeCloseTo(0.2, 12);
  });

  it('two categories, a missed gt, crowd and an unrelated label', () => {
    // cat 1: two gts in two images, one found (exact) -> recall 0.5, precision 1 up to recall 0.5:
    // recall thresholds 0.00..0.50 (51 of 101) get 1, the rest 0 -> AP = 51 / 101.
    // cat 2: one exact detection -> AP 1. A crowd gt of cat 2 with a detection on it: matched to the
    // crowd region, so ignored (neither TP nor FP). A detection of label 7 (no gt category) is not evaluated.
    // mean over categories: (51 / 101 + 1) / 2; AR100 = (0.5 + 1) / 2.
    const s = cocoEvaluate(
      [
        {
          boxes: [
            [0, 0, 20, 20],
            [50, 50, 90, 90],
          ],
          labels: [1, 2],
        },
        {
          boxes: [
            [0, 0, 30, 30],
            [60, 0, 100, 40],
          ],
          labels: [1, 2],
          iscrowd: [false, true],
        },
      ],
      [
        {
          boxes: [
            [0, 0, 20, 20],
            [50, 50, 90, 90],
            [0, 0, 5, 5],
          ],
          scores: [0.9, 0.8, 0.99],
          labels: [1, 2, 7],
        },
        { boxes: [[62, 2, 98, 38]], scores: [0.7], labels: [2] },
      ],
    );
    expect(s.AP).toBeCloseTo((51 / 101 + 1) / 2, 12);
    expect(s.AR100).toBeCloseTo(0.75, 12);
  });

  it("iouType 'segm': mask IoU on binarised masks, mask areas", () => {
    // 4x4 image. gt mask: the top-left 2x2 block (4 px, area 4: small). The detection's mask is 0.5 on
    // the top-left 3x2 block (6 px) and 0.49 elsewhere (off after binarising at 0.5): intersection 4,
    // union 6, IoU 2/3 -> matched at thresholds 0.50, 0.55, 0.60, 0.65 (4 of 10, AP 1 each), not above:
    // AP = 0.4, AP50 = 1, AP75 = 0, APs = 0.4, AR100 = 0.4. Its box [0, 0, 4, 4] has box IoU 4 / 16 with
    // the gt box: the same data evaluated on boxes gives AP 0.
    const gtMask = [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const dtMask = [0.5, 0.5, 0.5, 0.49, 0.5, 0.5, 0.5, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49, 0.49];
    const gt = [{ boxes: [[0, 0, 2, 2]], labels: [1], masks: [gtMask] }];
    const dt = [{ boxes: [[0, 0, 4, 4]], scores: [0.9], labels: [1], masks: [dtMask] }];
    const s = cocoEvaluate(gt, dt, { iouType: 'segm' });
    expect(s.AP).toBeCloseTo(0.4, 12);
    expect(s.AP50).toBeCloseTo(1, 12);
    expect(s.AP75).toBe(0);
    expect(s.APs).toBeCloseTo(0.4, 12);
    expect(s.APm).toBe(-1);
    expect(s.AR100).toBeCloseTo(0.4, 12);
    expect(cocoEvaluate(gt, dt).AP).toBe(0);
    expect(() => cocoEvaluate([{ boxes: [[0, 0, 2, 2]], labels: [1] }], dt, { iouType: 'segm' })).toThrow(VisBackbonesError);
  });
});
