/**
 * Layer-wise learning-rate decay (timm's group_matcher + param_groups_layer_decay) and the stage map
 * used by freezeStages, checked against rules written out per family, and the grouped optimizer's
 * update checked against the formula.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attach } from '../../src/tasks/attach.js';
import { uperNet } from '../../src/heads/uperNet.js';
import { manualSeed } from '../../src/layers/init.js';
import { Linear } from '../../src/layers/linear.js';
import { Module } from '../../src/layers/module.js';
import { swin } from '../../src/models/swin/index.js';
import { vit } from '../../src/models/vit/index.js';
import { stageAdapters } from '../../src/transfer/adapter.js';
import { parameterStages } from '../../src/transfer/freeze.js';
import { groupWithMatcher } from '../../src/models/groupMatcher.js';
import { GroupedOptimizer, layerDecayAssignments, paramGroupsLayerDecay } from '../../src/train/layerDecay.js';
import { FAMILIES } from '../helpers/families.js';
import { BACKENDS, useBackend } from '../helpers/backends.js';
import { expectError } from '../helpers/errors.js';

const tinySwin = () =>
  swin({ imgSize: 32, patchSize: 4, embedDim: 8, depths: [2, 2, 1, 1], numHeads: [1, 1, 2, 2], windowSize: 2, numClasses: 4 });

/** Swin per timm's matcher, written out: stem 0; block j of stage i -> 1 + (blocks before stage i) + j; a stage's downsample joins its first block; final norm joins the last block; the rest comes last. */
function swinRule(depths: number[]): (n: string) => number {
  const total = depths.reduce((a, b) => a + b, 0);
  return (n) => {
    if (n.startsWith('patch_embed.') || n.startsWith('absolute_pos_embed')) return 0;
    const cum = (i: number) => depths.slice(0, i).reduce((a, b) => a + b, 0);
    let r = /^layers\.(\d+)\.downsample\./.exec(n);
    if (r) return 1 + cum(Number(r[1]));
    r = /^layers\.(\d+)\.blocks\.(\d+)\./.exec(n);
    if (r) return 1 + cum(Number(r[1])) + Number(r[2]);
    if (n.startsWith('norm.')) return total;
    return total + 1;
  };
}

describe('layer-wise lr decay groups and stage maps', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('ViT: stem 0, block i -> i + 1, final norm with the last block, head last; scale = decay^(last - id)', () => {
    const m = vit({ imgSize: 32, patchSize: 16, embedDim: 16, depth: 3, numHeads: 2, numClasses: 4, globalPool: 'token' });
    const rule = (n: string) =>
      /^(cls_token|pos_embed|patch_embed)/.test(n)
        ? 0
        : /^blocks\.(\d+)\./.test(n)
          ? Number(/^blocks\.(\d+)\./.exec(n)![1]) + 1
          : n.startsWith('norm.')
            ? 3
            : 4;
    const as = layerDecayAssignments(m, { layerDecay: 0.5 });
    expect(as.length).toBe(m.trainableVariables().length);
    for (const a of as) {
      expect(a.layerId, a.name).toBe(rule(a.name));
      expect(a.lrScale, a.name).toBeCloseTo(0.5 ** (4 - rule(a.name)), 12);
    }
    expect(as.some((a) => a.name.startsWith('head.') && a.lrScale === 1)).toBe(true);
    m.dispose();
  });

  it('Swin: downsample joins the first block of its stage; attached neck/adapters/head parameters come last', () => {
    const b = tinySwin();
    const rule = swinRule([2, 2, 1, 1]);
    for (const a of layerDecayAssignments(b, { layerDecay: 0.75 })) expect(a.layerId, a.name).toBe(rule(a.name));
    b.resetClassifier(0);
    const ad = stageAdapters(b);
    const model = attach(b, uperNet({ inChannels: [8, 16, 32, 64], channels: 8, numClasses: 3 }), { adapters: ad });
    const as = layerDecayAssignments(model, { layerDecay: 0.75 });
    const last = Math.max(...as.map((a) => a.layerId));
    expect(last).toBe(7);
    for (const a of as) {
      const want = a.name.startsWith('backbone.') ? rule(a.name.slice('backbone.'.length)) : 7;
      expect(a.layerId, a.name).toBe(want);
      expect(a.lrScale).toBeCloseTo(0.75 ** (7 - want), 12);
    }
    // groups: (layer, decay / no decay); 1-D parameters (biases, norms) and the backbone's noWeightDecay()
    // names (timm's Swin: absolute_pos_embed, *relative_position_bias_table) get no weight decay
    const groups = paramGroupsLayerDecay(model, { layerDecay: 0.75, weightDecay: 0.05 });
    const byName = new Map(model.namedParameters());
    const noDecay = (n: string) =>
      byName.get(n)!.torchShape.length <= 1 || n === 'backbone.absolute_pos_embed' || n.endsWith('.relative_position_bias_table');
    for (const g of groups) {
      expect(g.name).toBe(`layer_${g.layerId}_${g.weightDecay > 0 ? 'decay' : 'no_decay'}`);
      for (const n of g.paramNames) expect(noDecay(n), n).toBe(g.weightDecay === 0);
    }
    expect(groups.some((g) => g.weightDecay === 0 && g.paramNames.some((n) => n.endsWith('.relative_position_bias_table')))).toBe(true);
    expect(groups.reduce((s, g) => s + g.variables.length, 0)).toBe(model.trainableVariables().length);
    model.dispose();
  });

  it('a pretraining wrapper: the encoder child is matched, the decoder comes last; a module without a matcher fails clearly', () => {
    class Wrapper extends Module {
      constructor(readonly encoder: Module) {
        super();
        this.addModule('encoder', encoder);
        this.addModule('decoder', new Linear(16, 4));
      }
      forward(x: tf.Tensor): tf.Tensor {
        return x;
      }
    }
    const m = new Wrapper(vit({ imgSize: 32, patchSize: 16, embedDim: 16, depth: 2, numHeads: 2, numClasses: 0 }));
    const rule = (n: string) =>
      /^encoder\.(cls_token|pos_embed|patch_embed)/.test(n)
        ? 0
        : /^encoder\.blocks\.(\d+)\./.test(n)
          ? Number(/^encoder\.blocks\.(\d+)\./.exec(n)![1]) + 1
          : n.startsWith('encoder.norm.')
            ? 2
            : 3;
    const as = layerDecayAssignments(m, { layerDecay: 0.5 });
    for (const a of as) expect(a.layerId, a.name).toBe(rule(a.name));
    expect(as.find((a) => a.name === 'encoder.pos_embed')!.weightDecay).toBe(0); // ViT's noWeightDecay(), prefixed
    expect(as.find((a) => a.name === 'decoder.weight')!.lrScale).toBe(1);
    m.dispose();
    const lin = new Linear(4, 4);
    expectError(() => layerDecayAssignments(lin), /Linear has no groupMatcher\(coarse\) method/);
    expectError(() => parameterStages(lin), /Linear has no groupMatcher\(coarse\) method/);
    lin.dispose();
  });

  it('timm ordinal grouping: MATCH_PREV_GROUP joins the previous group, unmatched names last', () => {
    const ids = groupWithMatcher(['a.0', 'b.1.x', 'b.0.y', 'b_norm', 'zzz'], {
      stem: '^a',
      blocks: [
        ['^b\\.(\\d+)', null],
        ['^b_norm', [99999]],
      ],
    });
    expect(Object.fromEntries(ids)).toEqual({ 'a.0': 0, 'b.0.y': 1, 'b.1.x': 2, b_norm: 2, zzz: 3 });
  });

  it('stage map (freezeStages) for every family: stem -1, featureInfo level i -> i, final norm / head after the stages', () => {
    for (const fam of FAMILIES) {
      const b = fam.build(32);
      const info = b.featureInfo;
      const want = (n: string) => {
        const lvl = info.findIndex((l) => n.startsWith(`${l.module}.`));
        if (lvl >= 0) return lvl;
        const merge = /^merge(\d+)\./.exec(n); // CSWin: merge<i> precedes stage i+1 (level i)
        if (merge) return Number(merge[1]);
        const outNorm = /^norm(\d+)\./.exec(n); // SeMask: norm<i> normalises level i's output
        if (outNorm) return Number(outNorm[1]);
        const embed = /^(?:patch_embed|pos_embed)([2-9])(\.|$)/.exec(n); // PVT v1: patch_embed<i> / pos_embed<i> open stage i (level i-1)
        if (embed) return Number(embed[1]) - 1;
        if (n === 'cls_token' && fam.name === 'pvt') return info.length - 1; // PVT v1: the last stage's class token
        if (/^(norm|fc_norm|norm_pre|head|neck)\./.test(n)) return Infinity;
        return -1;
      };
      const got = parameterStages(b);
      for (const [n] of b.namedParameters()) expect(got.get(n), `${fam.name}: ${n}`).toBe(want(n));
      expect(
        [...got.values()].some((s) => s === -1),
        `${fam.name} has a stem`,
      ).toBe(true);
      b.dispose();
    }
  });
});

for (const backend of BACKENDS) {
  describe(`GroupedOptimizer with layer-decay groups (SGD) on ${backend}`, () => {
    beforeAll(async () => {
      await useBackend(backend);
    });
    it('v <- v (1 - lr s wd) - lr s grad per group', () => {
      manualSeed(5);
      const m = vit({ imgSize: 32, patchSize: 16, embedDim: 16, depth: 3, numHeads: 2, numClasses: 4, globalPool: 'token' });
      const groups = paramGroupsLayerDecay(m, { layerDecay: 0.5, weightDecay: 0.1 });
      const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 9);
      const f = () => tf.tidy(() => tf.mean(tf.square(m.forward(x) as tf.Tensor)) as tf.Scalar);
      const vars = groups.flatMap((g) => g.variables);
      const { value, grads } = tf.variableGrads(f, vars);
      const before = new Map(vars.map((v) => [v.name, Float64Array.from(v.dataSync())]));
      const lr = 0.1;
      const opt = new GroupedOptimizer(groups, lr, (l) => tf.train.sgd(l));
      const loss = opt.minimize(f);
      expect(loss.dataSync()[0]).toBe(value.dataSync()[0]);
      let maxErr = 0;
      for (const g of groups) {
        for (const v of g.variables) {
          const old = before.get(v.name)!;
          const gr = grads[v.name].dataSync();
          const now = v.dataSync();
          for (let i = 0; i < old.length; i++) {
            const want = old[i] * (1 - lr * g.lrScale * g.weightDecay) - lr * g.lrScale * gr[i];
            maxErr = Math.max(maxErr, Math.abs(now[i] - want));
          }
        }
      }
      console.log(`[${backend}] grouped SGD step max abs err ${maxErr}`);
      expect(maxErr).toBeLessThan(1e-6);
      expect(new Set(groups.map((g) => g.lrScale)).size).toBe(5); // stem, 3 blocks, head
      tf.dispose([value, loss, x, ...Object.values(grads)]);
      opt.dispose();
      m.dispose();
    });
  });
}
