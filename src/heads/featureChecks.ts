import * as tf from '@tensorflow/tfjs';
import { check } from '../errors.js';

/** The part of a backbone's `featureInfo` entry that a head checks: channels and stride. */
export interface LevelInfo {
  numChs: number;
  reduction: number;
}

const shp = (t: tf.Tensor) => `[${t.shape.join(', ')}]`;

/** Whether `x` is a tensor (duck-typed, so tensors of another tfjs instance count too). */
export function isTensor(x: unknown): x is tf.Tensor {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as tf.Tensor).rank === 'number' &&
    Array.isArray((x as tf.Tensor).shape) &&
    typeof (x as tf.Tensor).dataSync === 'function'
  );
}

/**
 * Validate the NHWC maps given to a multi-level head: their number, rank, batch, channels
 * (`inChannels`), and, for a pyramid (`pyramid: true`), that each level halves the previous one's
 * height and width (strides increasing by 2x; a size may round either way).
 */
export function checkFeatureMaps(feats: tf.Tensor[], inChannels: number[], head: string, pyramid: boolean): void {
  check(Array.isArray(feats), () => `${head} expects a list of NHWC feature maps, got ${Object.prototype.toString.call(feats)}`);
  check(
    feats.length === inChannels.length,
    () => `${head} was built for ${inChannels.length} feature levels (inChannels [${inChannels.join(', ')}]) but got ${feats.length} maps`,
  );
  feats.forEach((f, i) => {
    check(
      isTensor(f) && f.rank === 4,
      () => `${head}: feature level ${i} must be an NHWC map [B, H, W, C], got ${isTensor(f) ? `shape ${shp(f)}` : String(f)}`,
    );
    check(
      f.shape[3] === inChannels[i],
      () =>
        `${head}: feature level ${i} has ${f.shape[3]} channels (shape ${shp(f)}) but the head was built with inChannels[${i}] = ${inChannels[i]} (inChannels [${inChannels.join(', ')}])`,
    );
    check(
      f.shape[0] === feats[0].shape[0],
      () => `${head}: feature level ${i} has batch ${f.shape[0]} but level 0 has ${feats[0].shape[0]}`,
    );
    if (pyramid && i > 0) {
      const p = feats[i - 1];
      const ok = [1, 2].every((a) => Math.abs(2 * f.shape[a] - p.shape[a]) <= 1);
      check(
        ok,
        () =>
          `${head} expects strides increasing by 2x between levels, but level ${i - 1} is ${p.shape[1]}x${p.shape[2]} and level ${i} is ${f.shape[1]}x${f.shape[2]} ` +
          `(sizes ${feats.map((t) => `${t.shape[1]}x${t.shape[2]}`).join(', ')})`,
      );
    }
  });
}

/**
 * Validate a backbone's `featureInfo` levels against a head's configuration: channels equal to
 * `inChannels`, strides equal to `inStrides` when the head fixes them, and (pyramid heads) strides
 * increasing by exactly 2x.
 */
export function checkLevelInfo(
  info: LevelInfo[],
  inChannels: number[],
  head: string,
  opts: { pyramid: boolean; inStrides?: number[] },
): void {
  const chs = info.map((l) => l.numChs);
  const strides = info.map((l) => l.reduction);
  check(
    info.length === inChannels.length,
    () =>
      `${head} was built for ${inChannels.length} feature levels (inChannels [${inChannels.join(', ')}]) but the backbone provides ${info.length} (channels [${chs.join(', ')}], strides [${strides.join(', ')}])`,
  );
  check(
    chs.every((c, i) => c === inChannels[i]),
    () =>
      `${head} was built with inChannels [${inChannels.join(', ')}] but the backbone's feature channels are [${chs.join(', ')}] (strides [${strides.join(', ')}])`,
  );
  if (opts.inStrides) {
    const want = opts.inStrides;
    check(
      want.length === strides.length && strides.every((s, i) => s === want[i]),
      () => `${head} was built for strides [${want.join(', ')}] but the backbone's feature strides are [${strides.join(', ')}]`,
    );
  }
  if (opts.pyramid) {
    check(
      strides.every((s, i) => i === 0 || s === 2 * strides[i - 1]),
      () =>
        `${head} needs feature strides increasing by 2x, got [${strides.join(', ')}] (for a plain, single-stride backbone put a simpleFeaturePyramid neck in front)`,
    );
  }
}
