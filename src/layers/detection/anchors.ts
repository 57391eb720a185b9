import * as tf from '@tensorflow/tfjs';
import { check } from '../../errors.js';
import { roundHalfEven } from './util.js';

const f = Math.fround;

/** Options of {@link anchorGenerator}: per level, the sizes and the aspect ratios (h / w). */
export interface AnchorGeneratorOptions {
  sizes: number[][];
  aspectRatios: number[][];
}

/**
 * Zero-centred cell anchors of one level (torchvision `AnchorGenerator.generate_anchors`), float32,
 * rounded half to even, ordered ratio-major: `[ratios * sizes, 4]` values.
 */
export function cellAnchorValues(sizes: number[], ratios: number[]): Float32Array {
  const out = new Float32Array(sizes.length * ratios.length * 4);
  let k = 0;
  for (const r of ratios) {
    const hr = f(Math.sqrt(f(r)));
    const wr = f(1 / hr);
    for (const s of sizes) {
      const ws = f(wr * f(s));
      const hs = f(hr * f(s));
      out[k++] = roundHalfEven(f(-ws / 2));
      out[k++] = roundHalfEven(f(-hs / 2));
      out[k++] = roundHalfEven(f(ws / 2));
      out[k++] = roundHalfEven(f(hs / 2));
    }
  }
  return out;
}

/**
 * Anchor boxes over the feature-map grids (Ren et al. 2015, sec. 3.1.1; torchvision `AnchorGenerator`):
 * anchors at `(x s_w, y s_h)` with stride `floor(padded / feature size)` per axis, ordered level, row,
 * column, cell anchor.
 */
export class AnchorGenerator {
  readonly sizes: number[][];
  readonly aspectRatios: number[][];
  private readonly cells: Float32Array[];
  constructor(opts: AnchorGeneratorOptions) {
    check(
      Array.isArray(opts?.sizes) &&
        Array.isArray(opts?.aspectRatios) &&
        opts.sizes.length === opts.aspectRatios.length &&
        opts.sizes.length > 0,
      () =>
        `anchorGenerator: sizes and aspectRatios must be lists with one entry per level, got ${JSON.stringify(opts?.sizes)} and ${JSON.stringify(opts?.aspectRatios)}`,
    );
    this.sizes = opts.sizes.map((s) => [...s]);
    this.aspectRatios = opts.aspectRatios.map((r) => [...r]);
    this.cells = this.sizes.map((s, l) => cellAnchorValues(s, this.aspectRatios[l]));
  }

  /** Per level `[A_l, 4]` zero-centred cell anchors (new tensors). */
  get cellAnchors(): tf.Tensor2D[] {
    return this.cells.map((c) => tf.tensor2d(c, [c.length / 4, 4]));
  }

  /** Anchors per location of each level. */
  numAnchorsPerLocation(): number[] {
    return this.cells.map((c) => c.length / 4);
  }

  /** Anchor coordinates as plain float32 values for the feature sizes of the levels and the padded size. */
  anchorValues(featureSizes: [number, number][], paddedSize: [number, number]): Float32Array {
    check(
      featureSizes.length === this.cells.length,
      () => `anchorGenerator: ${featureSizes.length} feature sizes for ${this.cells.length} levels`,
    );
    let total = 0;
    featureSizes.forEach(([h, w], l) => (total += h * w * this.cells[l].length));
    const out = new Float32Array(total);
    let k = 0;
    featureSizes.forEach(([gh, gw], l) => {
      check(gh > 0 && gw > 0, () => `anchorGenerator: feature size of level ${l} must be positive, got ${gh}x${gw}`);
      const sh = Math.floor(paddedSize[0] / gh);
      const sw = Math.floor(paddedSize[1] / gw);
      const cell = this.cells[l];
      for (let y = 0; y < gh; y++) {
        for (let x = 0; x < gw; x++) {
          const sx = x * sw;
          const sy = y * sh;
          for (let a = 0; a < cell.length; a += 4) {
            out[k++] = sx + cell[a];
            out[k++] = sy + cell[a + 1];
            out[k++] = sx + cell[a + 2];
            out[k++] = sy + cell[a + 3];
          }
        }
      }
    });
    return out;
  }

  /** `[sum_l H_l W_l A_l, 4]` anchors for the feature sizes `[H_l, W_l]` and the padded batch size. */
  anchors(featureSizes: [number, number][], paddedSize: [number, number]): tf.Tensor2D {
    const v = this.anchorValues(featureSizes, paddedSize);
    return tf.tensor2d(v, [v.length / 4, 4]);
  }
}

/** Build an {@link AnchorGenerator}. */
export function anchorGenerator(opts: AnchorGeneratorOptions): AnchorGenerator {
  return new AnchorGenerator(opts);
}
