import { VisBackbonesError } from '../../errors.js';
import * as tf from '@tensorflow/tfjs';
import { Conv2d } from '../../layers/conv2d.js';
import { GroupNorm } from '../../layers/detection/groupNorm.js';
import { ForwardOptions, Module } from '../../layers/module.js';
import { headConv } from './common.js';

/** `Conv2dNormActivation` as torchvision builds it in the RetinaNet v2 / RPN towers: keys `0` (conv) and `1` (norm). */
export class ConvNormAct extends Module {
  readonly conv: Conv2d;
  readonly norm: GroupNorm | null;
  constructor(inC: number, outC: number, opts: { k?: number; norm?: GroupNorm | null; std?: number } = {}) {
    super();
    this.conv = this.addModule('0', headConv(inC, outC, { k: opts.k ?? 3, bias: !opts.norm, std: opts.std }));
    this.norm = opts.norm ? this.addModule('1', opts.norm) : null;
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      let y = this.conv.forward(x);
      if (this.norm) y = this.norm.forward(y);
      return tf.relu(y) as tf.Tensor4D;
    });
  }
}

/** A stack of `ConvNormAct` blocks named `0, 1, ...` (torchvision's `nn.Sequential` of them). */
export class ConvTower extends Module {
  readonly blocks: ConvNormAct[] = [];
  constructor(channels: number, depth: number, norm: (() => GroupNorm) | null) {
    super();
    for (let i = 0; i < depth; i++)
      this.blocks.push(this.addModule(String(i), new ConvNormAct(channels, channels, { norm: norm ? norm() : null })));
  }
  forward(x: tf.Tensor, _opts?: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => this.blocks.reduce((y, b) => b.forward(y), x) as tf.Tensor4D);
  }
}

/**
 * FCOS's flat tower: `Conv2d` (with bias) at `3i`, `GroupNorm(32)` at `3i + 1`, ReLU at `3i + 2`
 * (no keys), as torchvision's `FCOSClassificationHead` / `FCOSRegressionHead`.
 */
export class FlatGnTower extends Module {
  readonly convs: Conv2d[] = [];
  readonly norms: GroupNorm[] = [];
  constructor(channels: number, depth: number, groups: number) {
    super();
    for (let i = 0; i < depth; i++) {
      this.convs.push(this.addModule(String(3 * i), headConv(channels, channels)));
      this.norms.push(this.addModule(String(3 * i + 1), new GroupNorm(groups, channels)));
    }
  }
  forward(x: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => this.convs.reduce((y, c, i) => tf.relu(this.norms[i].forward(c.forward(y))), x) as tf.Tensor4D);
  }
}

/** A plain container module (named children only). */
export class Container extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.addModule(name, m);
  }
  forward(): never {
    throw new VisBackbonesError('container modules have no forward');
  }
}

/** `[B, H, W, A * K]` -> `[B, H W A, K]` per level, concatenated over levels. */
export function flattenLevels(maps: tf.Tensor4D[], k: number): tf.Tensor3D {
  return tf.tidy(() => {
    const parts = maps.map((m) => tf.reshape(m, [m.shape[0], -1, k]));
    return (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor3D;
  });
}

/** A {@link FlatGnTower}. */
export function flatGnTowerOf(channels: number, depth: number, groups: number): FlatGnTower {
  return new FlatGnTower(channels, depth, groups);
}
