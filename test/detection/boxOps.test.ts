import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  anchorGenerator,
  batchedNms,
  boxCoder,
  boxIou,
  boxLinearCoder,
  clipBoxesToImage,
  generalizedBoxIou,
  generalizedBoxIouLoss,
  levelMapper,
  matcher,
  nms,
  pasteMasksInImage,
  removeSmallBoxes,
  sigmoidFocalLoss,
} from '../../src/layers/detection/index.js';
import { VisBackbonesError } from '../../src/errors.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { Fixture, loadFixture } from '../helpers/fixtures.js';
import { expectClose, parityLog } from './detHelpers.js';

for (const backend of BACKENDS) {
  describe(`box_ops fixture on ${backend}`, () => {
    let fx: Fixture;
    let io: Record<string, tf.Tensor>;
    beforeAll(async () => {
      await useBackend(backend);
      fx = loadFixture('box_ops');
      io = fx.io;
    });
    afterAll(() => {
      fx.dispose();
      console.log(`box_ops ${backend}`, JSON.stringify(parityLog));
    });
    const t2 = (n: string) => io[n] as tf.Tensor2D;

    it('box_iou and generalized_box_iou (NaN for 0/0)', () => {
      const before = tf.memory().numTensors;
      const iou = boxIou(t2('iou.boxes1'), t2('iou.boxes2'));
      const g = generalizedBoxIou(t2('iou.boxes1'), t2('iou.boxes2'));
      expectClose(fx, 'box_iou', iou);
      expectClose(fx, 'generalized_box_iou', g);
      expect(Array.from(iou.dataSync()).filter((v) => v !== v).length).toBe(fx.case.nan_outputs.box_iou);
      tf.dispose([iou, g]);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('nms at every threshold, batched nms small and > 1000 boxes', () => {
      for (const t of fx.case.kwargs.nms_thresholds as number[]) {
        const k = nms(t2('nms.boxes'), io['nms.scores'] as tf.Tensor1D, t);
        expect(k.dtype).toBe('int32');
        expectClose(fx, `nms.keep.${t}`, k);
        k.dispose();
      }
      const b = batchedNms(t2('bnms.boxes'), io['bnms.scores'] as tf.Tensor1D, io['bnms.idxs'] as tf.Tensor1D, fx.case.kwargs.bnms_thresh);
      expectClose(fx, 'batched_nms.keep', b);
      const bb = batchedNms(
        t2('bnms_big.boxes'),
        io['bnms_big.scores'] as tf.Tensor1D,
        Array.from(io['bnms_big.idxs'].dataSync()),
        fx.case.kwargs.bnms_thresh,
      );
      expectClose(fx, 'batched_nms_big.keep', bb);
      tf.dispose([b, bb]);
    });

    it('matcher settings (float32 thresholds, ties, low-quality matches)', () => {
      for (const m of fx.case.config.matchers as { name: string; high: number; low: number; allowLowQualityMatches: boolean }[]) {
        const r = matcher({ highThreshold: m.high, lowThreshold: m.low, allowLowQualityMatches: m.allowLowQualityMatches }).match(
          t2('matcher.quality'),
        );
        expectClose(fx, `matcher.${m.name}`, r);
        r.dispose();
      }
    });

    it('box coders and linear coders', () => {
      for (const [name, w] of Object.entries(fx.case.config.coderWeights as Record<string, [number, number, number, number]>)) {
        const c = boxCoder({ weights: w });
        const e = c.encode(t2('coder.gt'), t2('coder.proposals'));
        const d = c.decode(t2('coder.rel_codes'), t2('coder.proposals'));
        expectClose(fx, `box_coder.${name}.encode`, e);
        expectClose(fx, `box_coder.${name}.decode`, d);
        tf.dispose([e, d]);
      }
      for (const [name, norm] of [
        ['norm', true],
        ['raw', false],
      ] as const) {
        const c = boxLinearCoder({ normalizeBySize: norm });
        const e = c.encode(t2('coder.anchors_sq'), t2('coder.gt'));
        const d = c.decode(t2('coder.ltrb'), t2('coder.anchors_sq'));
        expectClose(fx, `linear_coder.${name}.encode`, e);
        expectClose(fx, `linear_coder.${name}.decode`, d);
        tf.dispose([e, d]);
      }
    });

    it('focal and GIoU losses', () => {
      const x = io['focal.inputs'];
      const y = io['focal.targets'];
      const a = sigmoidFocalLoss(x, y);
      const s = sigmoidFocalLoss(x, y, { reduction: 'sum' });
      const m = sigmoidFocalLoss(x, y, { alpha: -1, gamma: 1.5 });
      expectClose(fx, 'focal_loss.none', a);
      expectClose(fx, 'focal_loss.sum', s);
      expectClose(fx, 'focal_loss.alpha_m1.none', m);
      const g = generalizedBoxIouLoss(io['giou.boxes1'], io['giou.boxes2']);
      const gs = generalizedBoxIouLoss(io['giou.boxes1'], io['giou.boxes2'], { reduction: 'sum' });
      expectClose(fx, 'giou_loss.none', g);
      expectClose(fx, 'giou_loss.sum', gs);
      tf.dispose([a, s, m, g, gs]);
    });

    it('cell anchors (half to even) and grid anchors', () => {
      const cfg = fx.case.config.anchors;
      const gen = anchorGenerator({ sizes: cfg.sizes, aspectRatios: cfg.aspectRatios });
      const cells = gen.cellAnchors;
      cells.forEach((c, l) => expectClose(fx, `cell_anchors.${l}`, c));
      expect(gen.numAnchorsPerLocation()).toEqual([1, 6, 4]);
      const a = gen.anchors(cfg.gridSizes, cfg.padded);
      expectClose(fx, 'grid_anchors', a);
      tf.dispose([...cells, a]);
    });

    it('clip, remove small boxes, level mapper, paste masks', () => {
      const c = clipBoxesToImage(t2('clip.boxes'), fx.case.kwargs.clip_size);
      expectClose(fx, 'clip_boxes', c);
      const r = removeSmallBoxes(t2('clip.boxes'), fx.case.kwargs.min_size);
      expectClose(fx, 'remove_small_boxes.keep', r);
      const lm = levelMapper(fx.case.config.levelMapper).map(t2('levels.boxes'));
      expectClose(fx, 'level_mapper', lm);
      const masks = io['paste.masks'].reshape([4, 6, 6]) as tf.Tensor3D;
      const p = pasteMasksInImage(masks, t2('paste.boxes'), fx.case.kwargs.paste_size, { padding: 1 });
      expectClose(fx, 'paste_masks', p);
      tf.dispose([c, r, lm, masks, p]);
    });

    it('bad input raises VisBackbonesError', () => {
      expect(() => boxIou(tf.zeros([2, 3]) as tf.Tensor2D, t2('iou.boxes2'))).toThrow(VisBackbonesError);
      expect(() => nms(t2('nms.boxes'), tf.zeros([3]) as tf.Tensor1D, 0.5)).toThrow(VisBackbonesError);
      expect(() => matcher({ highThreshold: 0.3, lowThreshold: 0.5 })).toThrow(VisBackbonesError);
    });
  });
}
