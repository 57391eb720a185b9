/**
 * Heads against direct loop computations (test/heads/reference.ts) on tiny fixed weights: FPN, UPerNet
 * (the PPM branch with adaptive pooling by hand, and the whole head), the simple feature pyramid, the
 * light segmentation head, the pixel cross-entropy, NormMlpClassifierHead, BatchNorm in training mode,
 * and the resize semantics (PyTorch bilinear align_corners=False and nearest).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fpn } from '../../src/heads/fpn.js';
import { normMlpClassifierHead } from '../../src/layers/classifier.js';
import { pixelCrossEntropy } from '../../src/heads/pixelCrossEntropy.js';
import { segmentationHead } from '../../src/heads/segmentationHead.js';
import { simpleFeaturePyramid } from '../../src/heads/simpleFeaturePyramid.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { BatchNorm2d } from '../../src/layers/batchNorm.js';
import { interpolateNhwc } from '../../src/layers/interpolate.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import * as R from './reference.js';

// float32 module vs float64 loops: a few ulps per accumulated term; values are O(1).
const ATOL = 2e-5;
const RTOL = 1e-5;

function expectClose(name: string, actual: tf.Tensor, expected: R.Arr, errs: Record<string, number>): void {
  const r = R.maxErr(actual, expected, ATOL, RTOL);
  errs[name] = r.maxAbsErr;
  expect(r.ok, `${name}: max abs err ${r.maxAbsErr}`).toBe(true);
}

/** mmcv ConvModule (conv without bias, BN eval, ReLU) from a state dict. */
function convModuleRef(x: R.Arr, sd: Record<string, R.Arr>, p: string, pad: number): R.Arr {
  const y = R.conv2d(x, sd[`${p}.conv.weight`], null, 1, pad);
  return R.relu(R.batchNormEval(y, sd[`${p}.bn.weight`], sd[`${p}.bn.bias`], sd[`${p}.bn.running_mean`], sd[`${p}.bn.running_var`]));
}

for (const backend of BACKENDS) {
  describe(`heads vs direct computations on ${backend}`, () => {
    const errs: Record<string, number> = {};
    beforeAll(async () => {
      await useBackend(backend);
    });
    afterAll(() => {
      console.log(`direct-computation max abs errors [${backend}]`, JSON.stringify(errs));
    });

    it("interpolateNhwc bilinear / nearest (the heads' resizes) follow PyTorch (align_corners=False; nearest = floor(dst * in / out))", () => {
      const x = R.randomTensor([2, 3, 5, 2], 1);
      const xa = R.fromTensor(x);
      for (const [oh, ow] of [
        [7, 11],
        [6, 10],
        [2, 3],
        [1, 1],
        [8, 8],
      ] as [number, number][]) {
        const yb = interpolateNhwc(x, [oh, ow], { mode: 'bilinear' });
        expectClose(`bilinear 3x5->${oh}x${ow}`, yb, R.bilinear(xa, oh, ow), errs);
        const yn = interpolateNhwc(x, [oh, ow], { mode: 'nearest' });
        const rn = R.maxErr(yn, R.nearest(xa, oh, ow), 0, 0);
        expect(rn.ok, `nearest 3x5->${oh}x${ow}: max abs err ${rn.maxAbsErr}`).toBe(true);
        tf.dispose([yb, yn]);
      }
      x.dispose();
    });

    it('FPN: lateral 1x1, nearest top-down + add, 3x3 outputs, extra levels (max-pool and convs)', () => {
      const chs = [3, 5, 4];
      const sizes: [number, number][] = [
        [7, 9],
        [4, 5],
        [2, 3],
      ];
      const feats = chs.map((c, i) => R.randomTensor([2, ...sizes[i], c], 10 + i));
      const fa = feats.map(R.fromTensor);
      for (const mode of [false, 'on_input', 'on_output'] as const) {
        const head = fpn({ inChannels: chs, outChans: 6, numOuts: 5, addExtraConvs: mode, reluBeforeExtraConvs: mode === 'on_output' });
        const sd = R.fixedWeights(head, 3);
        const before = tf.memory().numTensors;
        const outs = head.forward(feats);
        expect(outs.length).toBe(5);
        // reference
        const lat = fa.map((f, i) => R.conv2d(f, sd[`lateral_convs.${i}.conv.weight`], sd[`lateral_convs.${i}.conv.bias`]));
        for (let i = lat.length - 1; i > 0; i--)
          lat[i - 1] = R.add(lat[i - 1], R.nearest(lat[i], lat[i - 1].shape[1], lat[i - 1].shape[2]));
        const ref = lat.map((l, i) => R.conv2d(l, sd[`fpn_convs.${i}.conv.weight`], sd[`fpn_convs.${i}.conv.bias`], 1, 1));
        if (!mode) {
          ref.push(R.maxPool(ref[2], 1, 2));
          ref.push(R.maxPool(ref[3], 1, 2));
        } else {
          const src = mode === 'on_input' ? fa[2] : ref[2];
          ref.push(R.conv2d(src, sd['fpn_convs.3.conv.weight'], sd['fpn_convs.3.conv.bias'], 2, 1));
          ref.push(
            R.conv2d(mode === 'on_output' ? R.relu(ref[3]) : ref[3], sd['fpn_convs.4.conv.weight'], sd['fpn_convs.4.conv.bias'], 2, 1),
          );
        }
        outs.forEach((o, i) => expectClose(`fpn(${mode}) level ${i}`, o, ref[i], errs));
        tf.dispose(outs);
        expect(tf.memory().numTensors).toBe(before);
        head.dispose();
      }
      tf.dispose(feats);
    });

    it('UPerNet: the PPM branch (adaptive pooling by hand) and the whole head match loops', () => {
      const chs = [3, 4, 6];
      const sizes: [number, number][] = [
        [14, 10],
        [7, 5],
        [4, 3],
      ];
      const feats = chs.map((c, i) => R.randomTensor([2, ...sizes[i], c], 20 + i));
      const fa = feats.map(R.fromTensor);
      const head = uperNet({ inChannels: chs, channels: 5, numClasses: 3, poolScales: [1, 2, 3, 6] });
      const sd = R.fixedWeights(head, 4);
      const before = tf.memory().numTensors;

      // PPM branch: bottleneck(concat([x, up(cbr(adaptive_pool_s(x))) for s in scales]))
      const x = fa[2];
      const branches = [1, 2, 3, 6].map((s, i) =>
        R.bilinear(convModuleRef(R.adaptiveAvgPool(x, s), sd, `psp_modules.${i}.1`, 0), x.shape[1], x.shape[2]),
      );
      const psp = convModuleRef(R.concatC([x, ...branches]), sd, 'bottleneck', 1);
      const pspOut = head.pspForward(feats);
      expectClose('uperNet psp branch', pspOut, psp, errs);
      pspOut.dispose();

      // whole head
      const lat = fa.slice(0, -1).map((f, i) => convModuleRef(f, sd, `lateral_convs.${i}`, 0));
      lat.push(psp);
      for (let i = lat.length - 1; i > 0; i--) lat[i - 1] = R.add(lat[i - 1], R.bilinear(lat[i], lat[i - 1].shape[1], lat[i - 1].shape[2]));
      const outs = lat.slice(0, -1).map((l, i) => convModuleRef(l, sd, `fpn_convs.${i}`, 1));
      outs.push(lat[lat.length - 1]);
      const [h0, w0] = [outs[0].shape[1], outs[0].shape[2]];
      for (let i = outs.length - 1; i > 0; i--) outs[i] = R.bilinear(outs[i], h0, w0);
      const fused = convModuleRef(R.concatC(outs), sd, 'fpn_bottleneck', 1);
      const logits = R.conv2d(fused, sd['conv_seg.weight'], sd['conv_seg.bias']);
      const y = head.forward(feats);
      expect(y.shape).toEqual([2, 14, 10, 3]);
      expectClose('uperNet logits', y, logits, errs);
      const yUp = head.forward(feats, { outSize: [56, 40] });
      expectClose('uperNet logits resized to 56x40', yUp, R.bilinear(logits, 56, 40), errs);
      tf.dispose([y, yUp]);
      expect(tf.memory().numTensors).toBe(before);
      head.dispose();
      tf.dispose(feats);
    });

    it('simple feature pyramid (scales 4, 2, 1, 0.5 + top block) matches loops', () => {
      const x = R.randomTensor([2, 3, 4, 8], 30);
      const xa = R.fromTensor(x);
      const sfp = simpleFeaturePyramid({ inChans: 8, outChans: 4, topBlock: true });
      const sd = R.fixedWeights(sfp, 5);
      expect(
        Object.keys(sd)
          .filter((k) => k.startsWith('simfp_2.'))
          .sort(),
      ).toEqual([
        'simfp_2.0.bias',
        'simfp_2.0.weight',
        'simfp_2.1.bias',
        'simfp_2.1.weight',
        'simfp_2.3.bias',
        'simfp_2.3.weight',
        'simfp_2.4.norm.bias',
        'simfp_2.4.norm.weight',
        'simfp_2.4.weight',
        'simfp_2.5.norm.bias',
        'simfp_2.5.norm.weight',
        'simfp_2.5.weight',
      ]);
      const tail = (t: R.Arr, p: string, j: number) => {
        const a = R.layerNormC(R.conv2d(t, sd[`${p}.${j}.weight`], null), sd[`${p}.${j}.norm.weight`], sd[`${p}.${j}.norm.bias`], 1e-6);
        return R.layerNormC(
          R.conv2d(a, sd[`${p}.${j + 1}.weight`], null, 1, 1),
          sd[`${p}.${j + 1}.norm.weight`],
          sd[`${p}.${j + 1}.norm.bias`],
          1e-6,
        );
      };
      let u = R.convTranspose2d(xa, sd['simfp_2.0.weight'], sd['simfp_2.0.bias']);
      u = R.gelu(R.layerNormC(u, sd['simfp_2.1.weight'], sd['simfp_2.1.bias'], 1e-6));
      u = R.convTranspose2d(u, sd['simfp_2.3.weight'], sd['simfp_2.3.bias']);
      const ref = [
        tail(u, 'simfp_2', 4),
        tail(R.convTranspose2d(xa, sd['simfp_3.0.weight'], sd['simfp_3.0.bias']), 'simfp_3', 1),
        tail(xa, 'simfp_4', 0),
        tail(R.maxPool(xa, 2, 2), 'simfp_5', 1),
      ];
      ref.push(R.maxPool(ref[3], 1, 2));
      const before = tf.memory().numTensors;
      const outs = sfp.forward(x);
      expect(outs.map((o) => o.shape)).toEqual([
        [2, 12, 16, 4],
        [2, 6, 8, 4],
        [2, 3, 4, 4],
        [2, 1, 2, 4],
        [2, 1, 1, 4],
      ]);
      expect(sfp.outStrides).toEqual([4, 8, 16, 32, 64]);
      outs.forEach((o, i) => expectClose(`sfp level ${i}`, o, ref[i], errs));
      tf.dispose(outs);
      expect(tf.memory().numTensors).toBe(before);
      sfp.dispose();
      x.dispose();
    });

    it('segmentation head: resize-concat, BN, 1x1 logits; pixel cross-entropy with ignore index', () => {
      const feats = [R.randomTensor([2, 6, 4, 3], 40), R.randomTensor([2, 3, 2, 5], 41)];
      const fa = feats.map(R.fromTensor);
      const head = segmentationHead({ inChannels: [3, 5], numClasses: 4 });
      const sd = R.fixedWeights(head, 6);
      const cat = R.concatC([fa[0], R.bilinear(fa[1], 6, 4)]);
      const logitsRef = R.conv2d(
        R.batchNormEval(cat, sd['bn.weight'], sd['bn.bias'], sd['bn.running_mean'], sd['bn.running_var']),
        sd['conv_seg.weight'],
        sd['conv_seg.bias'],
      );
      const logits = head.forward(feats);
      expectClose('segmentation head logits', logits, logitsRef, errs);

      const r = R.rng(7);
      const lab = new Int32Array(2 * 6 * 4).map(() => (r() < 0.25 ? 255 : Math.floor(r() * 4)));
      const labels = tf.tensor3d(lab, [2, 6, 4], 'int32');
      let sum = 0;
      let count = 0;
      for (let p = 0; p < lab.length; p++) {
        if (lab[p] === 255) continue;
        const row = Array.from(logitsRef.data.slice(p * 4, p * 4 + 4));
        const mx = Math.max(...row);
        const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
        sum += lse - row[lab[p]];
        count += 1;
      }
      const lossMean = pixelCrossEntropy(logits, labels);
      const lossAll = pixelCrossEntropy(logits, labels, { avgNonIgnore: false });
      const lossSum = pixelCrossEntropy(logits, labels, { reduction: 'sum' });
      expect(Math.abs(lossMean.dataSync()[0] - sum / count)).toBeLessThan(1e-5);
      expect(Math.abs(lossAll.dataSync()[0] - sum / lab.length)).toBeLessThan(1e-5);
      expect(Math.abs(lossSum.dataSync()[0] - sum)).toBeLessThan(1e-4);
      errs['pixel CE mean'] = Math.abs(lossMean.dataSync()[0] - sum / count);
      const allIgnored = tf.fill([2, 6, 4], 255, 'int32');
      const nan = pixelCrossEntropy(logits, allIgnored);
      expect(Number.isNaN(nan.dataSync()[0])).toBe(true); // 0/0, as PyTorch
      const bad = tf.fill([2, 6, 4], 4, 'int32');
      expect(() => pixelCrossEntropy(logits, bad)).toThrow(/label 4 .*outside \[0, 4\).*ignore index 255/);
      tf.dispose([logits, labels, lossMean, lossAll, lossSum, allIgnored, nan, bad, ...feats]);
      head.dispose();
    });

    it('NormMlpClassifierHead: pool, LayerNorm, tanh pre-logits, linear', () => {
      const x = R.randomTensor([2, 3, 4, 6], 50);
      const xa = R.fromTensor(x);
      const head = normMlpClassifierHead({ inChans: 6, numClasses: 3, hiddenSize: 5 });
      const sd = R.fixedWeights(head, 8);
      expect(Object.keys(sd).sort()).toEqual([
        'fc.bias',
        'fc.weight',
        'norm.bias',
        'norm.weight',
        'pre_logits.fc.bias',
        'pre_logits.fc.weight',
      ]);
      const pooled = R.zeros([2, 6]);
      for (let b = 0; b < 2; b++)
        for (let p = 0; p < 12; p++) for (let c = 0; c < 6; c++) pooled.data[b * 6 + c] += xa.data[(b * 12 + p) * 6 + c] / 12;
      const n = R.layerNormC(pooled, sd['norm.weight'], sd['norm.bias'], 1e-6);
      const lin = (v: R.Arr, w: R.Arr, bias: R.Arr) => {
        const [o, i] = w.shape;
        const y = R.zeros([v.shape[0], o]);
        for (let b = 0; b < v.shape[0]; b++)
          for (let k = 0; k < o; k++) {
            let s = bias.data[k];
            for (let j = 0; j < i; j++) s += v.data[b * i + j] * w.data[k * i + j];
            y.data[b * o + k] = s;
          }
        return y;
      };
      const h = lin(n, sd['pre_logits.fc.weight'], sd['pre_logits.fc.bias']);
      h.data = h.data.map(Math.tanh);
      const y = head.forward(x);
      expectClose('normMlp logits', y, lin(h, sd['fc.weight'], sd['fc.bias']), errs);
      tf.dispose([x, y]);
      head.dispose();
    });

    it('BatchNorm2d in training: batch statistics, unbiased running variance, momentum 0.1', () => {
      const bn = new BatchNorm2d(3);
      const sd = R.fixedWeights(bn, 9);
      const x = R.randomTensor([2, 3, 2, 3], 60);
      const ref = R.batchNormTrain(R.fromTensor(x), sd.weight, sd.bias, sd.running_mean, sd.running_var);
      const before = tf.memory().numTensors;
      const y = bn.forward(x, { training: true });
      expectClose('bn train output', y, ref.y, errs);
      expectClose('bn running mean', bn.runningMean, ref.runningMean, errs);
      expectClose('bn running var', bn.runningVar, ref.runningVar, errs);
      expect(bn.numBatchesTracked.dataSync()[0]).toBe(1);
      y.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(bn.trainableVariables().length).toBe(2); // weight, bias; never the running statistics
      bn.setTrainable(true);
      expect(bn.trainableVariables().length).toBe(2);
      const one = R.randomTensor([1, 1, 1, 3], 61);
      expect(() => bn.forward(one, { training: true })).toThrow(/more than one value per channel/);
      tf.dispose([x, one]);
      bn.dispose();
    });
  });
}
