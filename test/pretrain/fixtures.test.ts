import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fcmaeLoss } from '../../src/pretrain/fcmaeLoss.js';
import { evaLoss, milanLoss } from '../../src/pretrain/featureLosses.js';
import { hogTargets } from '../../src/pretrain/hog.js';
import { repeatMask } from '../../src/pretrain/maskUtils.js';
import { mixmimLoss, mixWithPartner } from '../../src/pretrain/mixmimLoss.js';
import { simmimLoss } from '../../src/pretrain/simmimLoss.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { compare, Fixture, loadFixture, nchwToNhwc } from '../helpers/fixtures.js';

/** Compare against the fixture with its own atol/rtol, record the max abs error, and assert. */
function expectClose(errs: Record<string, number>, name: string, actual: tf.Tensor, expected: tf.Tensor, fx: Fixture): void {
  const r = compare(actual, expected, fx.case.atol, fx.case.rtol);
  errs[name] = r.maxAbsErr;
  expect(r.worstExcess, `${fx.name}/${name}: max abs err ${r.maxAbsErr}`).toBeLessThanOrEqual(0);
}

for (const backend of BACKENDS) {
  describe(`pretraining fixtures on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    const errs: Record<string, number> = {};
    afterAll(() => console.log(`pretrain fixtures [${backend}] max abs err`, JSON.stringify(errs)));

    it('hog_64: HOG targets (normalised and raw) match HOGLayerC', () => {
      const fx = loadFixture('hog_64');
      const x = nchwToNhwc(fx.io.input);
      const before = tf.memory().numTensors;
      const cfg = fx.case.config;
      const hog = hogTargets(x, { nbins: cfg.nbins, pool: cfg.pool, gaussianWindow: cfg.gaussianWindow, normalize: true });
      const raw = hogTargets(x, { nbins: cfg.nbins, pool: cfg.pool, gaussianWindow: cfg.gaussianWindow, normalize: false });
      expect(tf.memory().numTensors).toBe(before + 2);
      const e1 = nchwToNhwc(fx.io.hog);
      const e2 = nchwToNhwc(fx.io.hog_unnormalized);
      expectClose(errs, 'hog', hog, e1, fx);
      expectClose(errs, 'hog_unnormalized', raw, e2, fx);
      tf.dispose([hog, raw, e1, e2, x]);
      fx.dispose();
    });

    it('simmim_loss_64: masked L1 loss matches SimMIM.forward', () => {
      const fx = loadFixture('simmim_loss_64');
      const x = nchwToNhwc(fx.io.x);
      const rec = nchwToNhwc(fx.io.x_rec);
      const before = tf.memory().numTensors;
      const loss = simmimLoss(x, rec, fx.io.mask, { patchSize: fx.case.config.patchSize });
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(loss.shape).toEqual([]);
      expectClose(errs, 'simmim_loss', loss.reshape([1]), fx.io.loss, fx);
      tf.dispose([loss, x, rec]);
      fx.dispose();
    });

    it('mixmim_loss_64: mixing, per-stage masks and both losses match MixMIM', () => {
      const fx = loadFixture('mixmim_loss_64');
      const x = nchwToNhwc(fx.io.x);
      const grid = fx.io.mask_grid as tf.Tensor2D;
      const stride = fx.case.config.encoderStride;
      const before = tf.memory().numTensors;
      const loss = mixmimLoss(x, fx.io.x_rec, grid, { patchSize: stride, normPixLoss: true });
      const lossRaw = mixmimLoss(x, fx.io.x_rec, grid, { patchSize: stride, normPixLoss: false });
      expect(tf.memory().numTensors).toBe(before + 2);
      expectClose(errs, 'mixmim_loss', loss.reshape([1]), fx.io.loss, fx);
      expectClose(errs, 'mixmim_loss_unnormalized_target', lossRaw.reshape([1]), fx.io.loss_unnormalized_target, fx);
      // the mask grid is the (1, L, 1) mask, row-major
      expectClose(errs, 'mask', grid.reshape([1, -1, 1]), fx.io.mask, fx);
      // per-stage nearest-upsampled copies (strides 4, 8, 16 for stride 32)
      for (const [name, f] of [
        ['mask_s1', 8],
        ['mask_s2', 4],
        ['mask_s3', 2],
      ] as const) {
        const up = repeatMask(grid, f);
        expectClose(errs, name, up.reshape([1, -1, 1]), fx.io[name], fx);
        up.dispose();
      }
      // pixel view of the mixing
      const mp = repeatMask(grid, stride);
      const mixed = mixWithPartner(x, mp);
      const em = nchwToNhwc(fx.io.x_mixed);
      expectClose(errs, 'x_mixed', mixed, em, fx);
      tf.dispose([loss, lossRaw, mp, mixed, em, x]);
      fx.dispose();
    });

    it('fcmae_loss_64: normalised and raw MSE over masked patches match FCMAE.forward_loss', () => {
      const fx = loadFixture('fcmae_loss_64');
      const x = nchwToNhwc(fx.io.imgs);
      const p = fx.case.config.patchSize;
      const predMap = nchwToNhwc(fx.io.pred); // decoder output as an NHWC map
      const before = tf.memory().numTensors;
      const loss = fcmaeLoss(x, fx.io.pred_tokens, fx.io.mask_grid, { patchSize: p, normPixLoss: true });
      const lossMap = fcmaeLoss(x, predMap, fx.io.mask_grid, { patchSize: p, normPixLoss: true });
      const lossRaw = fcmaeLoss(x, fx.io.pred_tokens, fx.io.mask_grid, { patchSize: p, normPixLoss: false });
      expect(tf.memory().numTensors).toBe(before + 3);
      expectClose(errs, 'fcmae_loss', loss.reshape([1]), fx.io.loss, fx);
      expectClose(errs, 'fcmae_loss_from_map', lossMap.reshape([1]), fx.io.loss, fx);
      expectClose(errs, 'fcmae_loss_unnormalized_target', lossRaw.reshape([1]), fx.io.loss_unnormalized_target, fx);
      expectClose(errs, 'fcmae_mask', fx.io.mask_grid.reshape([2, -1]), fx.io.mask, fx);
      tf.dispose([loss, lossMap, lossRaw, predMap, x]);
      fx.dispose();
    });

    it('milan_loss_17x32: CLIP-feature loss matches MILAN.forward_loss', () => {
      const fx = loadFixture('milan_loss_17x32');
      const before = tf.memory().numTensors;
      const loss = milanLoss(fx.io.pred, fx.io.teacher);
      expect(tf.memory().numTensors).toBe(before + 1);
      expectClose(errs, 'milan_loss', loss.reshape([1]), fx.io.loss, fx);
      loss.dispose();
      fx.dispose();
    });

    it('eva_loss_4x4: masked cosine loss matches EVA compute_loss', () => {
      const fx = loadFixture('eva_loss_4x4');
      const mask3 = fx.io.mask.reshape([2, 4, 4]);
      const before = tf.memory().numTensors;
      const loss = evaLoss(fx.io.student, fx.io.teacher, fx.io.mask);
      const loss3 = evaLoss(fx.io.student, fx.io.teacher, mask3);
      expect(tf.memory().numTensors).toBe(before + 2);
      expectClose(errs, 'eva_loss', loss.reshape([1]), fx.io.loss, fx);
      expectClose(errs, 'eva_loss_grid_mask', loss3.reshape([1]), fx.io.loss, fx);
      tf.dispose([loss, loss3, mask3]);
      fx.dispose();
    });
  });
}
