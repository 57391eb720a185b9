import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';
import { interpolateNhwc } from '../layers/interpolate.js';
import { maxPool2d } from '../layers/maxPool2d.js';
import { ForwardOptions, Module, ModuleList } from '../layers/module.js';
import { ConvModule, ConvModuleNorm } from './convModule.js';
import { checkFeatureMaps, checkLevelInfo, LevelInfo } from './featureChecks.js';

/** Options of {@link fpn} (mmdet's `FPN` arguments, camelCase). */
export interface FpnOptions {
  /** Channels of each input level, finest first. */
  inChannels: number[];
  /** Channels of every output level. */
  outChans: number;
  /** Number of outputs (default `inChannels.length`); more adds extra coarser levels. */
  numOuts?: number;
  /**
   * How extra levels are made: false (default: 1x1 max-pool, stride 2, of the last output) or a
   * 3x3 stride-2 conv on the last input ('on_input'), last lateral ('on_lateral') or last output
   * ('on_output'); further extra levels chain 3x3 stride-2 convs.
   */
  addExtraConvs?: false | 'on_input' | 'on_lateral' | 'on_output';
  /** ReLU before the chained extra convs (RetinaNet style). */
  reluBeforeExtraConvs?: boolean;
  /** Norm of the conv modules (default 'none', as mmdet's FPN). */
  norm?: ConvModuleNorm;
  /** Input strides, checked against the backbone when given (must increase by 2x). */
  inStrides?: number[];
}

/**
 * Feature Pyramid Network (Lin et al. 2017, sec. 3, Fig. 3): 1x1 lateral convs, a top-down path
 * that upsamples the coarser merged map by nearest neighbour to the finer level's size and adds it,
 * and 3x3 output convs; optional extra coarser levels. As mmdet's `FPN`; state-dict keys
 * `lateral_convs.<i>.conv.*`, `fpn_convs.<i>.conv.*` (extra-level convs follow in `fpn_convs`).
 */
export class FPN extends Module {
  /** How {@link attach} feeds it: the list of NHWC maps. */
  readonly inputKind = 'maps' as const;
  readonly lateralConvs: ModuleList<ConvModule>;
  readonly fpnConvs: ModuleList<ConvModule>;
  readonly numOuts: number;
  readonly outChans: number;
  readonly inChannels: number[];

  constructor(readonly opts: FpnOptions) {
    super();
    this.config = { ...opts };
    const { inChannels, outChans } = opts;
    check(
      Array.isArray(inChannels) && inChannels.length > 0 && inChannels.every((c) => Number.isInteger(c) && c > 0),
      () => `fpn: inChannels must be a non-empty list of positive integers, got ${JSON.stringify(inChannels)}`,
    );
    check(Number.isInteger(outChans) && outChans > 0, () => `fpn: outChans must be a positive integer, got ${outChans}`);
    this.inChannels = inChannels.slice();
    this.outChans = outChans;
    this.numOuts = opts.numOuts ?? inChannels.length;
    check(this.numOuts >= inChannels.length, () => `fpn: numOuts ${this.numOuts} is smaller than the ${inChannels.length} input levels`);
    if (opts.inStrides)
      check(
        opts.inStrides.length === inChannels.length,
        () => `fpn: inStrides lists ${opts.inStrides!.length} strides for ${inChannels.length} levels`,
      );
    const norm = opts.norm ?? 'none';
    const cm = (i: number, o: number, k: number, stride = 1) =>
      new ConvModule(i, o, k, { stride, padding: k === 3 ? 1 : 0, norm, act: 'none' });
    this.lateralConvs = this.addModule('lateral_convs', new ModuleList<ConvModule>());
    this.fpnConvs = this.addModule('fpn_convs', new ModuleList<ConvModule>());
    for (const c of inChannels) {
      this.lateralConvs.push(cm(c, outChans, 1));
      this.fpnConvs.push(cm(outChans, outChans, 3));
    }
    const extra = this.numOuts - inChannels.length;
    if (opts.addExtraConvs) {
      for (let i = 0; i < extra; i++) {
        const inC = i === 0 && opts.addExtraConvs === 'on_input' ? inChannels[inChannels.length - 1] : outChans;
        this.fpnConvs.push(cm(inC, outChans, 3, 2));
      }
    }
  }

  /** Check the backbone levels (`featureInfo` entries) against `inChannels` (and `inStrides`). */
  checkLevelInfo(info: LevelInfo[]): void {
    checkLevelInfo(info, this.inChannels, 'fpn', { pyramid: true, inStrides: this.opts.inStrides });
  }

  /** Output levels for input levels `info`: same strides, then one 2x coarser per extra level. */
  outLevelInfo(info: LevelInfo[]): LevelInfo[] {
    const out = info.map((l) => ({ numChs: this.outChans, reduction: l.reduction }));
    for (let i = info.length; i < this.numOuts; i++) out.push({ numChs: this.outChans, reduction: 2 * out[out.length - 1].reduction });
    return out;
  }

  /** `feats`: NHWC maps, finest first, strides increasing by 2x -> `numOuts` NHWC maps with `outChans` channels. */
  forward(feats: tf.Tensor[], opts: ForwardOptions = {}): tf.Tensor4D[] {
    checkFeatureMaps(feats, this.inChannels, 'fpn', true);
    return tf.tidy(() => {
      const n = feats.length;
      const lat = this.lateralConvs.items.map((m, i) => m.forward(feats[i], opts) as tf.Tensor);
      for (let i = n - 1; i > 0; i--) {
        const [, h, w] = lat[i - 1].shape;
        lat[i - 1] = tf.add(lat[i - 1], interpolateNhwc(lat[i], [h, w], { mode: 'nearest' }));
      }
      const outs: tf.Tensor4D[] = lat.map((l, i) => this.fpnConvs.items[i].forward(l, opts));
      const mode = this.opts.addExtraConvs ?? false;
      if (this.numOuts > n) {
        if (!mode) {
          for (let i = n; i < this.numOuts; i++) outs.push(maxPool2d(outs[outs.length - 1], 1, 2));
        } else {
          const src = mode === 'on_input' ? feats[n - 1] : mode === 'on_lateral' ? lat[n - 1] : outs[n - 1];
          outs.push(this.fpnConvs.items[n].forward(src, opts));
          for (let i = n + 1; i < this.numOuts; i++) {
            const prev = outs[outs.length - 1];
            outs.push(this.fpnConvs.items[i].forward(this.opts.reluBeforeExtraConvs ? tf.relu(prev) : prev, opts));
          }
        }
      }
      return outs;
    });
  }
}

/** Build an {@link FPN}. */
export function fpn(opts: FpnOptions): FPN {
  return new FPN(opts);
}
